/* cmd_replay.c - `hsqb-worker replay` (see cmd_replay.h).
 *
 * Why no consumer group: replay is an operator's query over the whole dead-letter topic,
 * run any number of times, possibly by several people; a group would remember where the
 * last run stopped (and commits would need a group nobody else uses). So it assigns
 * every partition from its low watermark and stops at the high watermark read at
 * start, which also means records it re-publishes into the topic it reads (--to equal
 * to --topic) are never read back in the same run.
 *
 * Records are handled as they stream in (filter, print, re-publish, wait for the
 * broker), so memory does not grow with the topic; only the set of event ids replayed in
 * this run is kept, to re-publish each event at most once per run.
 *
 * The command's own flags are picked out of argv first; everything left is handed to the
 * settings loader, so Kafka and Redis are addressed exactly as `run` addresses them.
 */
#include "worker/cmd_replay.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "common/clock.h"
#include "common/config.h"
#include "common/json.h"
#include "common/log.h"
#include "common/redis.h"
#include "common/utf8.h"
#include "worker/claim.h"
#include "worker/delay.h"
#include "worker/event.h"
#include "worker/exitcode.h"
#include "worker/producer.h"
#include "worker/result.h"
#include "worker/settings.h"

#define REPLAY_MAX_ARGS     256     /* setting flags passed through */
#define REPLAY_MAX_VALUES   64      /* values of one repeatable filter */
#define REPLAY_MAX_IDS      1000000 /* event ids remembered in one run */
#define REPLAY_SEND_TIMEOUT 30000
#define REPLAY_META_TIMEOUT 10000
#define REPLAY_DEFAULT_WAIT 60000 /* reading the topic to its end, at most */
#define REPLAY_CODE_MAX     64

/* Headers that describe the dead letter, not the event: a replay starts afresh. */
static const char *const dlq_only[] = {
    "hsqb-error-code",   "hsqb-error-message",  "hsqb-attempts",   "hsqb-first-failure",
    "hsqb-last-failure", "hsqb-consumer-group", "hsqb-not-before", "hsqb-last-error",
};

struct strlist {
    const char *v[REPLAY_MAX_VALUES];
    size_t n;
};

struct opts {
    const char *topic, *to;
    int64_t since, until; /* epoch ms; -1 none */
    struct strlist code, portal, realm, action, event_id;
    long long max; /* -1 none */
    int dry_run, force;
    int64_t wait_ms;
};

/* What one record says about itself. */
struct rec {
    int64_t when; /* hsqb-last-failure, else the Kafka timestamp; -1 unknown */
    char code[REPLAY_CODE_MAX];
    char id[EVENT_ID_MAX + 1];
    char action[48];
    char portal[24];
    char realm[EVENT_REALM_MAX + 1];
    char attempts[16];
    char target[DELAY_TOPIC_MAX + 1]; /* hsqb-original-topic, "" when absent */
    int replay_count;
};

struct idset {
    char **slot;
    size_t cap, n;
};

struct counts {
    long long scanned, chosen, replayed, succeeded, duplicate, failed;
};

static const char usage_text[] =
    "usage: hsqb-worker replay [--since TIME] [--until TIME] [--code C]... [--portal P]...\n"
    "         [--realm R]... [--action A]... [--event-id ID]... [--max N] [--dry-run]\n"
    "         [--force] [--topic T] [--to T] [--wait DURATION] [settings]\n"
    "Reads the dead-letter topic (kafka.topic.dlq, or --topic) from the beginning, lists\n"
    "the records matching every given filter and re-publishes them (original key, value\n"
    "and headers, plus hsqb-replay-of / hsqb-replay-count) to their original topic.\n"
    "TIME: epoch ms, 2026-03-01T10:00:00Z, or a duration ago (90m, 24h, 7d).\n"
    "Exit: 0 done, 1 a read or a re-publish failed, 2 usage.\n";

static int usage(FILE *err, const char *why, const char *arg)
{
    if (why)
        fprintf(err, "hsqb-worker replay: %s%s%s\n", why, arg ? ": " : "", arg ? arg : "");
    fputs(usage_text, err);
    return EXIT_USAGE;
}

/* ---- arguments ----------------------------------------------------------------------- */

/* Epoch ms, RFC 3339, or a duration ago. 0 and *out, or -1. */
/* Two ASCII digits at p into *v: 1, or 0 (v untouched). */
static int two_digits(const char *p, int *v)
{
    if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9')
        return 0;
    *v = (p[0] - '0') * 10 + (p[1] - '0');
    return 1;
}

static int parse_time(const char *s, int64_t now, int64_t *out)
{
    struct tm tm;
    const char *p;
    int64_t ms = 0, d;
    int sign, oh, om;
    char *end;

    if (s[0] >= '0' && s[0] <= '9' && strspn(s, "0123456789") == strlen(s) && strlen(s) >= 10) {
        *out = strtoll(s, &end, 10);
        return 0;
    }
    if (config_parse_duration(s, &d) == 0) {
        *out = now - d;
        return 0;
    }
    memset(&tm, 0, sizeof tm);
    p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p)
        return -1;
    if (*p == '.') {
        int digits = 0;

        for (p++; *p >= '0' && *p <= '9'; p++, digits++)
            if (digits < 3)
                ms = ms * 10 + (*p - '0');
        if (digits == 0)
            return -1;
        for (; digits < 3; digits++)
            ms *= 10;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if ((*p == '+' || *p == '-') && two_digits(p + 1, &oh) && p[3] == ':' &&
               two_digits(p + 4, &om)) {
        sign = *p == '+' ? 1 : -1;
        ms -= sign * ((int64_t)oh * 3600 + om * 60) * 1000;
        p += 6; /* sign, hh, ':', mm */
    } else {
        return -1;
    }
    if (*p)
        return -1;
    *out = (int64_t)timegm(&tm) * 1000 + ms;
    return 0;
}

static int add_value(struct strlist *l, const char *v)
{
    if (l->n == REPLAY_MAX_VALUES || !*v)
        return -1;
    l->v[l->n++] = v;
    return 0;
}

static int matches(const struct strlist *l, const char *v)
{
    size_t i;

    if (l->n == 0)
        return 1;
    for (i = 0; i < l->n; i++)
        if (strcmp(l->v[i], v) == 0)
            return 1;
    return 0;
}

/* Pick the command's flags out of argv; the rest go to settings (args, *nargs). */
static int parse_args(int argc, char **argv, struct opts *o, char **args, int *nargs, FILE *err)
{
    static const char *const flags[] = {"--since", "--until",  "--code",     "--portal",
                                        "--realm", "--action", "--event-id", "--max",
                                        "--topic", "--to",     "--wait"};
    int64_t now = clock_wall_ms();
    int i;
    size_t f;

    memset(o, 0, sizeof *o);
    o->since = o->until = -1;
    o->max = -1;
    o->wait_ms = REPLAY_DEFAULT_WAIT;
    *nargs = 0;
    args[(*nargs)++] = argv[0];
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        size_t len;

        if (strcmp(a, "--dry-run") == 0) {
            o->dry_run = 1;
            continue;
        }
        if (strcmp(a, "--force") == 0) {
            o->force = 1;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
            return usage(err, NULL, NULL);
        for (f = 0; f < sizeof flags / sizeof flags[0]; f++) {
            len = strlen(flags[f]);
            if (strncmp(a, flags[f], len) == 0 && (a[len] == '\0' || a[len] == '='))
                break;
        }
        if (f == sizeof flags / sizeof flags[0]) {
            if (*nargs >= REPLAY_MAX_ARGS - 1)
                return usage(err, "too many arguments", NULL);
            args[(*nargs)++] = argv[i];
            continue;
        }
        len = strlen(flags[f]);
        if (a[len] == '=')
            v = a + len + 1;
        else if (i + 1 < argc)
            v = argv[++i];
        else
            return usage(err, "missing value", a);
        if (strcmp(flags[f], "--since") == 0 || strcmp(flags[f], "--until") == 0) {
            if (parse_time(v, now, flags[f][2] == 's' ? &o->since : &o->until) < 0)
                return usage(err, "not a time", v);
        } else if (strcmp(flags[f], "--max") == 0) {
            char *end;

            o->max = strtoll(v, &end, 10);
            if (*end || end == v || o->max < 1)
                return usage(err, "--max wants a positive count", v);
        } else if (strcmp(flags[f], "--wait") == 0) {
            if (config_parse_duration(v, &o->wait_ms) < 0 || o->wait_ms < 1000)
                return usage(err, "--wait wants a duration of at least 1s", v);
        } else if (strcmp(flags[f], "--topic") == 0) {
            o->topic = v;
        } else if (strcmp(flags[f], "--to") == 0) {
            o->to = v;
        } else {
            struct strlist *l = strcmp(flags[f], "--code") == 0     ? &o->code
                                : strcmp(flags[f], "--portal") == 0 ? &o->portal
                                : strcmp(flags[f], "--realm") == 0  ? &o->realm
                                : strcmp(flags[f], "--action") == 0 ? &o->action
                                                                    : &o->event_id;

            if (l == &o->action && strncmp(v, "hsqb.action.", 12) == 0)
                v += 12;
            if (add_value(l, v) < 0)
                return usage(err, "empty or too many values", a);
        }
    }
    args[*nargs] = NULL;
    return 0;
}

/* ---- reading a record ---------------------------------------------------------------- */

static int hdr_str(const rd_kafka_headers_t *h, const char *name, char *buf, size_t bufsz)
{
    const void *v = NULL;
    size_t n = 0;

    buf[0] = '\0';
    if (!h || rd_kafka_header_get_last(h, name, &v, &n) != RD_KAFKA_RESP_ERR_NO_ERROR || !v ||
        n >= bufsz || memchr(v, '\0', n))
        return -1;
    memcpy(buf, v, n);
    buf[n] = '\0';
    return 0;
}

/* Action, portal and realm from the value (best effort: undecodable values have none). */
static void peek_value(const rd_kafka_message_t *m, struct rec *r)
{
    struct json_object *root, *data, *o, *in;
    const char *s;
    int64_t portal;

    if (!m->payload || m->len > EVENT_MAX_BYTES)
        return;
    root = json_parse_strict(m->payload, m->len, EVENT_MAX_DEPTH, NULL, 0);
    if (!root)
        return;
    if (!r->id[0] && json_get_str(root, "id", &s) == JGET_OK && strlen(s) <= EVENT_ID_MAX)
        snprintf(r->id, sizeof r->id, "%s", s);
    if (json_get_str(root, "type", &s) == JGET_OK && strncmp(s, "hsqb.action.", 12) == 0)
        snprintf(r->action, sizeof r->action, "%s", s + 12);
    if (json_get_obj(root, "data", &data) == JGET_OK) {
        if (!r->portal[0] && json_get_obj(data, "origin", &o) == JGET_OK &&
            json_get_int64_lenient(o, "portalId", 1, INT64_MAX, &portal) == JGET_OK)
            snprintf(r->portal, sizeof r->portal, "%" PRId64, portal);
        if ((json_get_obj(data, "inputFields", &in) == JGET_OK ||
             json_get_obj(data, "fields", &in) == JGET_OK) &&
            json_get_str(in, "qbo_realm_id", &s) == JGET_OK && strlen(s) <= EVENT_REALM_MAX)
            snprintf(r->realm, sizeof r->realm, "%s", s);
    }
    json_object_put(root);
}

static void read_rec(const rd_kafka_message_t *m, const rd_kafka_headers_t *h, struct rec *r)
{
    struct result_inbound_meta meta;
    char buf[32];
    const char *colon;

    memset(r, 0, sizeof *r);
    r->when = rd_kafka_message_timestamp(m, NULL);
    if (hdr_str(h, "hsqb-last-failure", buf, sizeof buf) == 0)
        r->when = strtoll(buf, NULL, 10);
    hdr_str(h, "hsqb-error-code", r->code, sizeof r->code);
    hdr_str(h, "hsqb-event-id", r->id, sizeof r->id);
    hdr_str(h, "hsqb-attempts", r->attempts, sizeof r->attempts);
    hdr_str(h, "hsqb-original-topic", r->target, sizeof r->target);
    /* the worker's own bounded reading of the headers: a count it would not accept is
     * none, never an int past INT_MAX */
    result_inbound_meta_read(h, &meta);
    r->replay_count = meta.replay_count;
    /* the key is "<portal>:<TYPE>:<object>" */
    if (m->key && m->key_len > 0 && m->key_len < 64 &&
        (colon = memchr(m->key, ':', m->key_len)) != NULL &&
        (size_t)(colon - (const char *)m->key) < sizeof r->portal)
        snprintf(r->portal, sizeof r->portal, "%.*s", (int)(colon - (const char *)m->key),
                 (const char *)m->key);
    peek_value(m, r);
}

static int chosen(const struct opts *o, const struct rec *r)
{
    return (o->since < 0 || (r->when >= 0 && r->when >= o->since)) &&
           (o->until < 0 || (r->when >= 0 && r->when < o->until)) && matches(&o->code, r->code) &&
           matches(&o->portal, r->portal) && matches(&o->realm, r->realm) &&
           matches(&o->action, r->action) && matches(&o->event_id, r->id);
}

/* ---- the set of event ids replayed in this run ---------------------------------------- */

static uint64_t strhash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* 1 when added, 0 when present already, -1 out of memory / full. */
static int idset_add(struct idset *s, const char *id)
{
    size_t i;

    if (s->n * 2 >= s->cap) {
        struct idset g = {NULL, s->cap ? s->cap * 2 : 1024, 0};

        if (s->n >= REPLAY_MAX_IDS || !(g.slot = calloc(g.cap, sizeof *g.slot)))
            return -1;
        for (i = 0; i < s->cap; i++)
            if (s->slot[i]) {
                size_t j = strhash(s->slot[i]) & (g.cap - 1);

                while (g.slot[j])
                    j = (j + 1) & (g.cap - 1);
                g.slot[j] = s->slot[i];
                g.n++;
            }
        free(s->slot);
        *s = g;
    }
    for (i = strhash(id) & (s->cap - 1); s->slot[i]; i = (i + 1) & (s->cap - 1))
        if (strcmp(s->slot[i], id) == 0)
            return 0;
    if (!(s->slot[i] = strdup(id)))
        return -1;
    s->n++;
    return 1;
}

static void idset_free(struct idset *s)
{
    size_t i;

    for (i = 0; i < s->cap; i++)
        free(s->slot[i]);
    free(s->slot);
}

/* ---- acting on a record ------------------------------------------------------------ */

/* 1 when Redis holds a successful outcome for the event. */
static int already_succeeded(struct redis_conn *redis, const char *id)
{
    struct claim_stored st = {0};
    char e[256];
    int ok;

    if (!redis || !id[0])
        return 0;
    ok = claim_peek(redis, id, &st, e, sizeof e) == 1 && !st.failed;
    claim_stored_release(&st);
    return ok;
}

static int republish(struct producer *pr, const char *topic, const rd_kafka_message_t *m,
                     const rd_kafka_headers_t *h, const struct rec *r, char *errstr, size_t errsz)
{
    char of[DELAY_TOPIC_MAX + 48], count[16];
    struct kafka_header add[2] = {{"hsqb-replay-of", of}, {"hsqb-replay-count", count}};
    struct kafka_header_set out;
    struct producer_msg pm;
    int rc;

    snprintf(of, sizeof of, "%s:%" PRId32 ":%" PRId64, rd_kafka_topic_name(m->rkt), m->partition,
             m->offset);
    snprintf(count, sizeof count, "%d",
             r->replay_count < RESULT_REPLAY_COUNT_MAX ? r->replay_count + 1 : r->replay_count);
    if (delay_headers_forward(h, dlq_only, sizeof dlq_only / sizeof dlq_only[0], add, 2, &out,
                              errstr, errsz) < 0)
        return -1;
    /* the original key and value bytes */
    pm = (struct producer_msg){topic, m->key, m->key ? m->key_len : 0, m->payload,
                               m->payload ? m->len : 0, out.h, out.n};
    rc = producer_send_sync(pr, &pm, REPLAY_SEND_TIMEOUT, errstr, errsz);
    kafka_header_set_release(&out);
    return rc;
}

static void fmt_time(int64_t ms, char *buf, size_t bufsz)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;

    if (ms < 0 || !gmtime_r(&s, &tm)) {
        snprintf(buf, bufsz, "-");
        return;
    }
    snprintf(buf, bufsz, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

/* Text that came from a dead letter (which keeps hostile input byte for byte) as the
 * operator's terminal gets it: utf8_printable's rule, "-" when empty. */
static const char *shown(const char *s, char *buf, size_t bufsz)
{
    return !s || !*s ? "-" : utf8_printable(s, buf, bufsz);
}

static void row(FILE *out, const rd_kafka_message_t *m, const struct rec *r, const char *what)
{
    char at[64], coord[DELAY_TOPIC_MAX + 48], f[7][4 * 320];

    fmt_time(r->when, at, sizeof at);
    snprintf(coord, sizeof coord, "%s:%" PRId32 ":%" PRId64, rd_kafka_topic_name(m->rkt),
             m->partition, m->offset);
    fprintf(out, "%-26s  %-24s  %-24s  %-30s  %-20s  %-10s  %-20s  %-3s  %s\n",
            shown(coord, f[0], sizeof f[0]), at, shown(r->code, f[1], sizeof f[1]),
            shown(r->id, f[2], sizeof f[2]), shown(r->action, f[3], sizeof f[3]),
            shown(r->portal, f[4], sizeof f[4]), shown(r->realm, f[5], sizeof f[5]),
            shown(r->attempts, f[6], sizeof f[6]), what);
}

/* ---- the run ------------------------------------------------------------------------- */

struct run {
    const struct opts *o;
    const struct config *cfg;
    rd_kafka_t *rk;
    struct producer *pr;
    struct redis_conn *redis;
    struct idset ids;
    struct counts n;
    const char *topic, *default_to;
    FILE *out, *err;
};

/* One record; returns 1 when --max is reached. */
static int handle(struct run *R, rd_kafka_message_t *m)
{
    rd_kafka_headers_t *h = NULL;
    struct rec r;
    char e[512], what[600], shown_what[4 * 600];
    const char *to;

    R->n.scanned++;
    if (rd_kafka_message_headers(m, &h) != RD_KAFKA_RESP_ERR_NO_ERROR)
        h = NULL;
    read_rec(m, h, &r);
    if (!chosen(R->o, &r))
        return 0;
    R->n.chosen++;
    to = R->o->to ? R->o->to : r.target[0] ? r.target : R->default_to;
    if (R->o->dry_run) {
        snprintf(what, sizeof what, "would replay to %s", to);
    } else if (r.id[0] && idset_add(&R->ids, r.id) == 0) {
        R->n.duplicate++;
        snprintf(what, sizeof what, "skipped: event replayed earlier in this run");
    } else if (!R->o->force && already_succeeded(R->redis, r.id)) {
        R->n.succeeded++;
        snprintf(what, sizeof what, "skipped: already succeeded");
    } else if (republish(R->pr, to, m, h, &r, e, sizeof e) < 0) {
        R->n.failed++;
        snprintf(what, sizeof what, "FAILED: %s", e);
    } else {
        R->n.replayed++;
        snprintf(what, sizeof what, "replayed to %s", to);
    }
    row(R->out, m, &r, shown(what, shown_what, sizeof shown_what));
    return R->o->max > 0 && R->n.chosen >= R->o->max;
}

/* Assign every partition of the topic from its low watermark; *hi receives each
 * partition's high watermark (indexed by partition id, -1 when empty). */
static int assign_all(struct run *R, int64_t **hi, int *nparts, char *errstr, size_t errsz)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(R->rk, R->topic, NULL);
    rd_kafka_topic_partition_list_t *l = NULL;
    rd_kafka_resp_err_t err;
    int i, rc = -1, np;

    if (!rkt) {
        snprintf(errstr, errsz, "topic %s: %s", R->topic, rd_kafka_err2str(rd_kafka_last_error()));
        return -1;
    }
    err = rd_kafka_metadata(R->rk, 0, rkt, &md, REPLAY_META_TIMEOUT);
    if (err || md->topic_cnt != 1 || md->topics[0].err) {
        snprintf(errstr, errsz, "topic %s: %s", R->topic,
                 rd_kafka_err2str(err                  ? err
                                  : md->topic_cnt == 1 ? md->topics[0].err
                                                       : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC));
        goto out;
    }
    np = 0;
    for (i = 0; i < md->topics[0].partition_cnt; i++)
        if (md->topics[0].partitions[i].id + 1 > np)
            np = md->topics[0].partitions[i].id + 1;
    *hi = calloc((size_t)np + 1, sizeof **hi);
    l = rd_kafka_topic_partition_list_new(np > 0 ? np : 1);
    if (!*hi || !l) {
        snprintf(errstr, errsz, "out of memory");
        goto out;
    }
    for (i = 0; i < np; i++)
        (*hi)[i] = -1;
    for (i = 0; i < md->topics[0].partition_cnt; i++) {
        int32_t p = md->topics[0].partitions[i].id;
        int64_t lo = 0, h = 0;

        err = rd_kafka_query_watermark_offsets(R->rk, R->topic, p, &lo, &h, REPLAY_META_TIMEOUT);
        if (err) {
            snprintf(errstr, errsz, "watermarks of %s/%d: %s", R->topic, (int)p,
                     rd_kafka_err2str(err));
            goto out;
        }
        if (h > lo) {
            (*hi)[p] = h;
            rd_kafka_topic_partition_list_add(l, R->topic, p)->offset = lo;
        }
    }
    *nparts = np;
    if (l->cnt > 0 && (err = rd_kafka_assign(R->rk, l)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(errstr, errsz, "assign: %s", rd_kafka_err2str(err));
        goto out;
    }
    rc = 0;
out:
    if (l)
        rd_kafka_topic_partition_list_destroy(l);
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    if (rc < 0) {
        free(*hi);
        *hi = NULL;
    }
    return rc;
}

static rd_kafka_t *make_consumer(const struct config *cfg, char *errstr, size_t errsz)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char e[256], group[64];
    rd_kafka_t *rk;

    snprintf(group, sizeof group, "hsqb-replay-%ld", (long)getpid());
    if (config_kafka_apply(cfg, conf, errstr, errsz) < 0)
        goto fail;
#define SET(k, v)                                                                                  \
    if (rd_kafka_conf_set(conf, k, v, e, sizeof e) != RD_KAFKA_CONF_OK) {                          \
        snprintf(errstr, errsz, "%s: %s", k, e);                                                   \
        goto fail;                                                                                 \
    }
    SET("bootstrap.servers", config_get_str(cfg, "kafka.brokers"));
    SET("group.id", group); /* never joined: partitions are assigned, nothing committed */
    SET("enable.auto.commit", "false");
    SET("enable.auto.offset.store", "false");
    SET("client.id", "hsqb-replay");
#undef SET
    if (!(rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, e, sizeof e))) {
        snprintf(errstr, errsz, "%s", e);
        goto fail;
    }
    return rk;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

/* Reads every assigned partition up to its high watermark. 0, or -1 when the deadline
 * passed first (errstr). */
static int read_all(struct run *R, int64_t *hi, int nparts, char *errstr, size_t errsz)
{
    int64_t deadline = clock_mono_ms() + R->o->wait_ms;
    int left = 0, i;

    for (i = 0; i < nparts; i++)
        left += hi[i] >= 0;
    while (left > 0) {
        rd_kafka_message_t *m;

        if (clock_mono_ms() > deadline) {
            snprintf(errstr, errsz, "%d partition(s) of %s not read to their end within %lld ms",
                     left, R->topic, (long long)R->o->wait_ms);
            return -1;
        }
        if (!(m = rd_kafka_consumer_poll(R->rk, 200)))
            continue;
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                fprintf(R->err, "hsqb-worker replay: reading %s: %s\n", R->topic,
                        rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        if (m->partition >= 0 && m->partition < nparts && hi[m->partition] >= 0 &&
            m->offset < hi[m->partition]) {
            int stop = handle(R, m);

            if (m->offset + 1 >= hi[m->partition]) {
                hi[m->partition] = -1;
                left--;
            }
            if (stop) {
                rd_kafka_message_destroy(m);
                return 0;
            }
        }
        rd_kafka_message_destroy(m);
    }
    return 0;
}

int cmd_replay_run(int argc, char **argv, char **envp, FILE *out, FILE *err)
{
    char *args[REPLAY_MAX_ARGS], e[1024];
    struct config *cfg = NULL;
    struct opts o;
    struct run R = {0};
    int64_t *hi = NULL;
    int nargs = 0, nparts = 0, rc;

    if ((rc = parse_args(argc, argv, &o, args, &nargs, err)) != 0)
        return rc;
    if (settings_load_flags(&cfg, nargs, args, envp, SETTINGS_SKIP_REQUIRED, e, sizeof e) < 0) {
        fprintf(err, "hsqb-worker replay: %s\n", e);
        return EXIT_USAGE;
    }
    if (!*config_get_str(cfg, "kafka.brokers")) {
        fprintf(err, "hsqb-worker replay: kafka.brokers is required\n");
        config_free(cfg);
        return EXIT_USAGE;
    }
    if (log_get_level() < LOG_WARN)
        log_set_level(LOG_WARN); /* librdkafka's and the producer's chatter stays off stdout */
    R.o = &o;
    R.cfg = cfg;
    R.out = out;
    R.err = err;
    R.topic = o.topic ? o.topic : config_get_str(cfg, "kafka.topic.dlq");
    R.default_to = config_get_str(cfg, "kafka.topic.actions");
    rc = EXIT_FAIL;
    if (!(R.rk = make_consumer(cfg, e, sizeof e)))
        goto fail;
    if (!o.dry_run) {
        if (!(R.pr = producer_new(cfg, e, sizeof e)))
            goto fail;
        if (!o.force) {
            struct redis_opts ro;

            settings_redis_opts(cfg, &ro);
            if (!(R.redis = redis_conn_new(&ro, e, sizeof e)))
                fprintf(err,
                        "hsqb-worker replay: warning: Redis unreachable (%s); not checking for "
                        "events that already succeeded (the worker still skips them)\n",
                        e);
        }
    }
    if (assign_all(&R, &hi, &nparts, e, sizeof e) < 0)
        goto fail;
    fprintf(out, "%-26s  %-24s  %-24s  %-30s  %-20s  %-10s  %-20s  %-3s  %s\n", "RECORD",
            "FAILED_AT", "CODE", "EVENT_ID", "ACTION", "PORTAL", "REALM", "ATT", "RESULT");
    if (read_all(&R, hi, nparts, e, sizeof e) < 0) {
        fprintf(out, "%s\n", "(incomplete)");
        goto fail;
    }
    fprintf(out,
            "%s: %lld record(s) scanned, %lld chosen, %lld replayed, %lld skipped (already "
            "succeeded), %lld skipped (same event earlier in this run), %lld failed%s\n",
            R.topic, R.n.scanned, R.n.chosen, R.n.replayed, R.n.succeeded, R.n.duplicate,
            R.n.failed, o.dry_run ? " (dry run: nothing published)" : "");
    rc = R.n.failed ? EXIT_FAIL : EXIT_OK;
    goto out;
fail:
    fprintf(err, "hsqb-worker replay: %s\n", e);
    if (R.n.scanned)
        fprintf(out,
                "%s: %lld record(s) scanned, %lld chosen, %lld replayed, %lld failed before "
                "stopping\n",
                R.topic, R.n.scanned, R.n.chosen, R.n.replayed, R.n.failed);
out:
    free(hi);
    idset_free(&R.ids);
    redis_conn_free(R.redis);
    producer_free(R.pr);
    if (R.rk)
        rd_kafka_destroy_flags(R.rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    config_free(cfg);
    fflush(out);
    return rc;
}

int cmd_replay(int argc, char **argv)
{
    return cmd_replay_run(argc, argv, (char **)config_environ(), stdout, stderr);
}
