/*
 * kafka-mock: a stand-alone Kafka for tests, built on librdkafka's mock cluster.
 *
 * Why this way: there is no Kafka broker (nor Docker, nor network) where the tests run,
 * but librdkafka ships a real Kafka-protocol broker implementation (rdkafka_mock.h) that
 * any client can reach over 127.0.0.1, including consumer groups spread over several
 * processes. This program only hosts it: one idle producer handle owns the cluster, the
 * cluster runs on librdkafka's own mock thread, and the main thread is a poll() loop that
 * waits for a signal or a control line. Every fault is injected through the public mock
 * API, so the control channel never touches broker internals.
 *
 * Life cycle (main):
 *
 *   parse args --> block SIGTERM/SIGINT --> km_cluster_start (cluster + topics)
 *     --> control socket listens --> km_announce (stdout line + bootstrap file)
 *     --> km_loop (control lines) --until signal, `quit`, or stdin EOF-->
 *     km_shutdown (unlink files, destroy cluster, destroy handle) --> exit 0
 *
 * The signals are blocked before librdkafka starts its threads, so they inherit the mask
 * and the signals are only ever read from the signalfd: a SIGTERM can never kill the
 * process half-way through a control command or while the cluster is being destroyed.
 *
 * The bootstrap file appears (tmp + rename) only once the cluster, the topics and the
 * control socket are all ready, so "the file exists" means "you may connect now".
 *
 * `kafka-mock --ctl SOCKET WORDS...` is a one-shot client of the control socket, since
 * the machines we run on have neither nc nor socat.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define KM_BROKERS_MAX    32    /* mock broker ids are 1..N */
#define KM_TOPICS_MAX     64    /* topics this program tracks (CLI + `topic create`) */
#define KM_TOPIC_NAME_MAX 249   /* Kafka's own limit on topic names */
#define KM_PARTITIONS_MAX 1024  /* per topic */
#define KM_CONF_MAX       32    /* -X key=value pairs */
#define KM_LINE_MAX       1024  /* one control line, newline included */
#define KM_REPLY_MAX      4096  /* one reply line, newline included */
#define KM_CLIENTS_MAX    16    /* simultaneous control-socket connections */
#define KM_ERRORS_MAX     10000 /* requests hit by one `errors` or `delay` command */
#define KM_RTT_MAX_MS     60000 /* injected round-trip time */
#define KM_ARGS_MAX       8     /* words in one control line */
#define KM_RF_MAX         3     /* replication factor used for created topics */

struct km_topic {
    char name[KM_TOPIC_NAME_MAX + 1];
    int partitions;
};

struct km_options {
    int brokers;
    struct km_topic topics[KM_TOPICS_MAX];
    int topic_cnt;
    const char *bootstrap_file; /* may be NULL */
    const char *control_socket; /* may be NULL */
    int stdin_control;
    const char *conf[KM_CONF_MAX]; /* "key=value", borrowed from argv */
    int conf_cnt;
};

/* A control peer: stdin (replies on stdout) or one accepted socket connection. */
struct km_conn {
    int in_fd;  /* -1 when the slot is free */
    int out_fd; /* where replies go */
    char buf[KM_LINE_MAX];
    size_t len;
    int overflow; /* discarding the rest of an over-long line */
};

struct km_server {
    const struct km_options *opt;
    rd_kafka_t *rk;
    rd_kafka_mock_cluster_t *mcluster;
    const char *bootstraps; /* owned by mcluster */
    int down[KM_BROKERS_MAX + 1];
    int rtt_ms[KM_BROKERS_MAX + 1];
    struct km_topic topics[KM_TOPICS_MAX];
    int topic_cnt;
    int sig_fd;
    int listen_fd;
    int wrote_bootstrap_file;
    struct stat bootstrap_st; /* identity of the file we wrote */
    struct stat socket_st;    /* identity of the socket file we bound */
    struct km_conn stdin_conn;
    struct km_conn conns[KM_CLIENTS_MAX];
    int quit;
};

/* Kafka protocol API keys by their protocol names (KIP "ApiKeys"), for `errors`, `delay`. */
/* clang-format off */
static const char *const km_api_names[] = {
    /*  0 */ "Produce", "Fetch", "ListOffsets", "Metadata",
    /*  4 */ "LeaderAndIsr", "StopReplica", "UpdateMetadata", "ControlledShutdown",
    /*  8 */ "OffsetCommit", "OffsetFetch", "FindCoordinator", "JoinGroup",
    /* 12 */ "Heartbeat", "LeaveGroup", "SyncGroup", "DescribeGroups",
    /* 16 */ "ListGroups", "SaslHandshake", "ApiVersions", "CreateTopics",
    /* 20 */ "DeleteTopics", "DeleteRecords", "InitProducerId", "OffsetForLeaderEpoch",
    /* 24 */ "AddPartitionsToTxn", "AddOffsetsToTxn", "EndTxn", "WriteTxnMarkers",
    /* 28 */ "TxnOffsetCommit", "DescribeAcls", "CreateAcls", "DeleteAcls",
    /* 32 */ "DescribeConfigs", "AlterConfigs", "AlterReplicaLogDirs", "DescribeLogDirs",
    /* 36 */ "SaslAuthenticate", "CreatePartitions", "CreateDelegationToken",
    /* 39 */ "RenewDelegationToken", "ExpireDelegationToken", "DescribeDelegationToken",
    /* 42 */ "DeleteGroups", "ElectLeaders", "IncrementalAlterConfigs",
    /* 45 */ "AlterPartitionReassignments", "ListPartitionReassignments", "OffsetDelete",
};
/* clang-format on */

/* Current Kafka names for codes librdkafka 2.0.2 still calls by their old names. */
static const struct {
    const char *name;
    rd_kafka_resp_err_t code;
} km_err_aliases[] = {
    {"NOT_LEADER_OR_FOLLOWER", RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION},
    {"COORDINATOR_LOAD_IN_PROGRESS", RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS},
    {"COORDINATOR_NOT_AVAILABLE", RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE},
    {"NOT_COORDINATOR", RD_KAFKA_RESP_ERR_NOT_COORDINATOR},
};

static const struct km_topic km_default_topics[] = {
    {"hsqb.actions", 6},
    {"hsqb.actions.retry", 3},
    {"hsqb.actions.dlq", 1},
    {"hsqb.results", 6},
};

static void km_usage(FILE *f)
{
    fprintf(f,
            "usage: kafka-mock [--brokers N] [--topic NAME:PARTITIONS]... [--no-default-topics]\n"
            "                  [--bootstrap-file PATH] [--control-socket PATH] [--stdin-control]\n"
            "                  [-X librdkafka.property=value]...\n"
            "       kafka-mock --ctl SOCKET COMMAND WORDS...\n"
            "Hosts librdkafka's mock Kafka cluster on 127.0.0.1 until SIGTERM/SIGINT.\n"
            "See tests/kafka-mock/README.md for the control protocol.\n");
}

/* Parses a whole decimal int in [lo, hi]; 0 on success. */
static int km_parse_int(const char *s, long lo, long hi, int *out)
{
    char *end = NULL;
    long v;

    if (!s || !*s)
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

/* Adds or replaces (same name) a topic in a list of at most KM_TOPICS_MAX. */
static int km_topic_put(struct km_topic *topics, int *cnt, const char *name, size_t namelen,
                        int partitions)
{
    int i;

    if (namelen == 0 || namelen > KM_TOPIC_NAME_MAX)
        return -1;
    for (i = 0; i < *cnt; i++) {
        if (strlen(topics[i].name) == namelen && !memcmp(topics[i].name, name, namelen)) {
            topics[i].partitions = partitions;
            return 0;
        }
    }
    if (*cnt >= KM_TOPICS_MAX)
        return -1;
    memcpy(topics[*cnt].name, name, namelen);
    topics[*cnt].name[namelen] = '\0';
    topics[*cnt].partitions = partitions;
    (*cnt)++;
    return 0;
}

static int km_parse_topic_arg(struct km_topic *topics, int *cnt, const char *arg)
{
    const char *colon = strrchr(arg, ':');
    int partitions;

    if (!colon || km_parse_int(colon + 1, 1, KM_PARTITIONS_MAX, &partitions) == -1)
        return -1;
    return km_topic_put(topics, cnt, arg, (size_t)(colon - arg), partitions);
}

/*
 * Start-up only: exits 2 on bad usage, as style rule 6 allows. --topic adds a topic or
 * changes a default one's partition count; --no-default-topics keeps only --topic ones.
 */
static void km_parse_args(int argc, char **argv, struct km_options *opt)
{
    static struct km_topic named[KM_TOPICS_MAX];
    int named_cnt = 0;
    int defaults = 1;
    int i;
    size_t k;

    memset(opt, 0, sizeof(*opt));
    opt->brokers = 1;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int ok = 1;

        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            km_usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--no-default-topics")) {
            defaults = 0;
            continue;
        } else if (!strcmp(a, "--stdin-control")) {
            opt->stdin_control = 1;
            continue;
        } else if (v && !strcmp(a, "--brokers")) {
            ok = km_parse_int(v, 1, KM_BROKERS_MAX, &opt->brokers) == 0;
        } else if (v && !strcmp(a, "--topic")) {
            ok = km_parse_topic_arg(named, &named_cnt, v) == 0;
        } else if (v && !strcmp(a, "--bootstrap-file")) {
            opt->bootstrap_file = v;
        } else if (v && !strcmp(a, "--control-socket")) {
            opt->control_socket = v;
            ok = strlen(v) < sizeof(((struct sockaddr_un *)0)->sun_path);
        } else if (v && !strcmp(a, "-X")) {
            ok = strchr(v, '=') && opt->conf_cnt < KM_CONF_MAX;
            if (ok)
                opt->conf[opt->conf_cnt++] = v;
        } else {
            ok = 0;
        }
        if (!ok) {
            fprintf(stderr, "kafka-mock: bad or incomplete option %s%s%s\n", a, v ? " " : "",
                    v ? v : "");
            km_usage(stderr);
            exit(2);
        }
        i++;
    }
    for (k = 0; defaults && k < sizeof(km_default_topics) / sizeof(km_default_topics[0]); k++)
        opt->topics[opt->topic_cnt++] = km_default_topics[k];
    for (i = 0; i < named_cnt; i++) {
        if (km_topic_put(opt->topics, &opt->topic_cnt, named[i].name, strlen(named[i].name),
                         named[i].partitions) == -1) {
            fprintf(stderr, "kafka-mock: more than %d topics\n", KM_TOPICS_MAX);
            exit(2);
        }
    }
}

/*
 * librdkafka log lines go to stderr, tagged. The owning handle has no bootstrap.servers
 * by design (it only hosts the cluster), so that one start-up warning is dropped.
 */
static void km_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    if (!strcmp(fac, "CONFWARN") && strstr(buf, "bootstrap.servers"))
        return;
    fprintf(stderr, "kafka-mock: rdkafka %d %s: %s\n", level, fac, buf);
}

static int km_cluster_start(struct km_server *s, char *errstr, size_t errsz)
{
    const struct km_options *opt = s->opt;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int rf = opt->brokers < KM_RF_MAX ? opt->brokers : KM_RF_MAX;
    int i;

    rd_kafka_conf_set_log_cb(conf, km_log_cb);
    for (i = 0; i < opt->conf_cnt; i++) {
        char key[256];
        const char *eq = strchr(opt->conf[i], '=');
        size_t klen = (size_t)(eq - opt->conf[i]);

        if (klen >= sizeof(key)) {
            snprintf(errstr, errsz, "-X %s: property name too long", opt->conf[i]);
            rd_kafka_conf_destroy(conf);
            return -1;
        }
        memcpy(key, opt->conf[i], klen);
        key[klen] = '\0';
        if (rd_kafka_conf_set(conf, key, eq + 1, errstr, errsz) != RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(conf);
            return -1;
        }
    }
    s->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errsz);
    if (!s->rk) {
        rd_kafka_conf_destroy(conf); /* rd_kafka_new takes the conf only on success */
        return -1;
    }
    s->mcluster = rd_kafka_mock_cluster_new(s->rk, opt->brokers);
    if (!s->mcluster) {
        snprintf(errstr, errsz, "rd_kafka_mock_cluster_new(%d brokers) failed", opt->brokers);
        return -1;
    }
    s->bootstraps = rd_kafka_mock_cluster_bootstraps(s->mcluster);
    for (i = 0; i < opt->topic_cnt; i++) {
        rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(s->mcluster, opt->topics[i].name,
                                                             opt->topics[i].partitions, rf);
        if (err) {
            snprintf(errstr, errsz, "topic %s: %s", opt->topics[i].name, rd_kafka_err2str(err));
            return -1;
        }
        s->topics[s->topic_cnt++] = opt->topics[i];
    }
    return 0;
}

/*
 * Binds the control socket. A leftover socket file nobody listens on (a crashed run) is
 * replaced; a live one is an error, so two mocks never share a path.
 */
static int km_listen(struct km_server *s, char *errstr, size_t errsz)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    const char *path = s->opt->control_socket;
    struct stat st;
    int fd;

    memcpy(sa.sun_path, path, strlen(path) + 1); /* length checked at parse time */
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int live = probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0;

        if (probe >= 0)
            close(probe);
        if (live) {
            snprintf(errstr, errsz, "control socket %s is in use", path);
            return -1;
        }
        unlink(path);
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 || listen(fd, 16) == -1) {
        snprintf(errstr, errsz, "control socket %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    s->listen_fd = fd;
    if (stat(path, &s->socket_st) == -1)
        memset(&s->socket_st, 0, sizeof(s->socket_st));
    return 0;
}

/* Writes all of buf to a blocking or non-blocking fd; -1 if it cannot at once. */
static int km_write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static int km_announce(struct km_server *s, char *errstr, size_t errsz)
{
    const char *path = s->opt->bootstrap_file;
    char tmp[PATH_MAX];
    int fd = -1;
    int rc = -1;

    printf("%s\n", s->bootstraps);
    if (fflush(stdout) != 0) {
        snprintf(errstr, errsz, "stdout: %s", strerror(errno));
        return -1;
    }
    if (!path)
        return 0;
    if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(tmp)) {
        snprintf(errstr, errsz, "bootstrap file path too long");
        return -1;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || km_write_all(fd, s->bootstraps, strlen(s->bootstraps)) == -1 ||
        km_write_all(fd, "\n", 1) == -1) {
        snprintf(errstr, errsz, "%.256s: %s", path, strerror(errno));
        goto out;
    }
    if (close(fd) == -1) {
        fd = -1;
        snprintf(errstr, errsz, "%.256s: %s", path, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) == -1) {
        snprintf(errstr, errsz, "rename to %s: %s", path, strerror(errno));
        goto out;
    }
    s->wrote_bootstrap_file = stat(path, &s->bootstrap_st) == 0;
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (rc == -1)
        unlink(tmp);
    return rc;
}

/* ---- control commands --------------------------------------------------------------- */

static int km_parse_api(const char *s)
{
    size_t n = strlen(s);
    size_t i;
    int key;

    if (km_parse_int(s, 0, INT16_MAX, &key) == 0)
        return key;
    if (n > 7 && !strcasecmp(s + n - 7, "Request"))
        n -= 7;
    for (i = 0; i < sizeof(km_api_names) / sizeof(km_api_names[0]); i++)
        if (strlen(km_api_names[i]) == n && !strncasecmp(km_api_names[i], s, n))
            return (int)i;
    return -1;
}

/* Error names as rd_kafka_err2name() spells them, optionally RD_KAFKA_RESP_ERR_-prefixed. */
static int km_parse_err(const char *s, rd_kafka_resp_err_t *out)
{
    const struct rd_kafka_err_desc *descs;
    size_t cnt;
    size_t i;
    int code;

    if (km_parse_int(s, INT16_MIN, INT16_MAX, &code) == 0) {
        *out = (rd_kafka_resp_err_t)code;
        return 0;
    }
    if (!strncasecmp(s, "RD_KAFKA_RESP_ERR_", 18))
        s += 18;
    rd_kafka_get_err_descs(&descs, &cnt);
    for (i = 0; i < cnt; i++) {
        if (descs[i].name && !strcasecmp(descs[i].name, s)) {
            *out = descs[i].code;
            return 0;
        }
    }
    for (i = 0; i < sizeof(km_err_aliases) / sizeof(km_err_aliases[0]); i++) {
        if (!strcasecmp(km_err_aliases[i].name, s)) {
            *out = km_err_aliases[i].code;
            return 0;
        }
    }
    return -1;
}

/* "all" is -1 (every broker), otherwise an id in 1..brokers. */
static int km_parse_broker(const struct km_server *s, const char *arg, int allow_all, int *out)
{
    if (allow_all && !strcmp(arg, "all")) {
        *out = -1;
        return 0;
    }
    return km_parse_int(arg, 1, s->opt->brokers, out);
}

/*
 * Control commands. Each handler gets the words of one line (argc already checked
 * against the table) and returns 0 with reply "ok" untouched or filled with "ok ...",
 * or -1 with reply filled with "err <reason>".
 */
typedef int (*km_cmd_fn)(struct km_server *s, char **argv, char *reply, size_t replysz);

static int km_fail(char *reply, size_t replysz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int km_fail(char *reply, size_t replysz, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(reply, replysz, "err ");

    va_start(ap, fmt);
    vsnprintf(reply + n, replysz - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

static int km_mock_result(rd_kafka_resp_err_t err, char *reply, size_t replysz)
{
    if (!err)
        return 0;
    return km_fail(reply, replysz, "%s: %s", rd_kafka_err2name(err), rd_kafka_err2str(err));
}

/* One line: "ok brokers=N bootstrap=H:P,... down=ID,...|- rtt=ID:MS,... topics=T:P,..." */
static int km_cmd_status(struct km_server *s, char **argv, char *reply, size_t replysz)
{
    const char *sep = "";
    size_t off = 0;
    int i;

    (void)argv;
#define KM_APPEND(...)                                                                             \
    do {                                                                                           \
        if (off < replysz)                                                                         \
            off += (size_t)snprintf(reply + off, replysz - off, __VA_ARGS__);                      \
    } while (0)

    KM_APPEND("ok brokers=%d bootstrap=%s down=", s->opt->brokers, s->bootstraps);
    for (i = 1; i <= s->opt->brokers; i++) {
        if (s->down[i]) {
            KM_APPEND("%s%d", sep, i);
            sep = ",";
        }
    }
    KM_APPEND("%s rtt=", *sep ? "" : "-");
    for (i = 1, sep = ""; i <= s->opt->brokers; i++, sep = ",")
        KM_APPEND("%s%d:%d", sep, i, s->rtt_ms[i]);
    KM_APPEND(" topics=");
    for (i = 0, sep = ""; i < s->topic_cnt; i++, sep = ",")
        KM_APPEND("%s%s:%d", sep, s->topics[i].name, s->topics[i].partitions);
#undef KM_APPEND
    if (off >= replysz)
        snprintf(reply + replysz - 5, 5, "...");
    return 0;
}

static int km_cmd_broker(struct km_server *s, char **argv, char *reply, size_t replysz)
{
    int down = !strcmp(argv[1], "down");
    int id;
    int i;

    if (!down && strcmp(argv[1], "up") != 0)
        return km_fail(reply, replysz, "usage: broker down|up <id|all>");
    if (km_parse_broker(s, argv[2], 1, &id) == -1)
        return km_fail(reply, replysz, "broker must be 1..%d or all", s->opt->brokers);
    if (km_mock_result(down ? rd_kafka_mock_broker_set_down(s->mcluster, id)
                            : rd_kafka_mock_broker_set_up(s->mcluster, id),
                       reply, replysz) == -1)
        return -1;
    for (i = 1; i <= s->opt->brokers; i++)
        if (id == -1 || id == i)
            s->down[i] = down;
    return 0;
}

static int km_cmd_rtt(struct km_server *s, char **argv, char *reply, size_t replysz)
{
    int id;
    int ms;
    int i;

    if (km_parse_broker(s, argv[1], 1, &id) == -1 ||
        km_parse_int(argv[2], 0, KM_RTT_MAX_MS, &ms) == -1)
        return km_fail(reply, replysz, "usage: rtt <1..%d|all> <0..%d ms>", s->opt->brokers,
                       KM_RTT_MAX_MS);
    if (km_mock_result(rd_kafka_mock_broker_set_rtt(s->mcluster, id, ms), reply, replysz) == -1)
        return -1;
    for (i = 1; i <= s->opt->brokers; i++)
        if (id == -1 || id == i)
            s->rtt_ms[i] = ms;
    return 0;
}

static int km_cmd_errors(struct km_server *s, char **argv, char *reply, size_t replysz)
{
    rd_kafka_resp_err_t code;
    rd_kafka_resp_err_t *codes;
    int api = km_parse_api(argv[1]);
    int cnt;
    int i;

    if (api < 0)
        return km_fail(reply, replysz, "unknown api %s", argv[1]);
    if (!argv[3]) {
        if (strcmp(argv[2], "clear") != 0)
            return km_fail(reply, replysz,
                           "usage: errors <Api> <count> <Error> | errors <Api> clear");
        rd_kafka_mock_clear_request_errors(s->mcluster, (int16_t)api);
        return 0;
    }
    if (km_parse_int(argv[2], 1, KM_ERRORS_MAX, &cnt) == -1)
        return km_fail(reply, replysz, "count must be 1..%d", KM_ERRORS_MAX);
    if (km_parse_err(argv[3], &code) == -1)
        return km_fail(reply, replysz, "unknown error %s", argv[3]);
    codes = malloc(sizeof(*codes) * (size_t)cnt);
    if (!codes)
        return km_fail(reply, replysz, "out of memory");
    for (i = 0; i < cnt; i++)
        codes[i] = code;
    rd_kafka_mock_push_request_errors_array(s->mcluster, (int16_t)api, (size_t)cnt, codes);
    free(codes);
    return 0;
}

/*
 * The next `count` requests of one API on one broker (or on each), in the order the
 * broker reads them, get their responses `ms` late, without an error. Unlike `rtt` it
 * picks requests, not a whole broker: the mock elects the first member to join a group
 * its leader, so delaying the coordinator's next JoinGroup response before a group forms
 * makes the leader send its SyncGroup after the followers', the only order in which the
 * mock's sync completes for everyone (see the README, "Consumer groups").
 *
 * librdkafka 2.0.2 prefers a broker's own stack for an API over the cluster-wide one
 * `errors` fills, even once it is empty: after `delay <id> <Api>`, `errors <Api>` no
 * longer reaches broker <id>. Nothing in the public API clears a broker's stack.
 */
static int km_cmd_delay(struct km_server *s, char **argv, char *reply, size_t replysz)
{
    int api = km_parse_api(argv[2]);
    int id;
    int cnt;
    int ms;
    int b;
    int i;

    if (km_parse_broker(s, argv[1], 1, &id) == -1)
        return km_fail(reply, replysz, "broker must be 1..%d or all", s->opt->brokers);
    if (api < 0)
        return km_fail(reply, replysz, "unknown api %s", argv[2]);
    if (km_parse_int(argv[3], 1, KM_ERRORS_MAX, &cnt) == -1)
        return km_fail(reply, replysz, "count must be 1..%d", KM_ERRORS_MAX);
    if (km_parse_int(argv[4], 0, KM_RTT_MAX_MS, &ms) == -1)
        return km_fail(reply, replysz, "ms must be 0..%d", KM_RTT_MAX_MS);
    for (b = 1; b <= s->opt->brokers; b++) {
        if (id != -1 && id != b)
            continue;
        for (i = 0; i < cnt; i++)
            if (km_mock_result(rd_kafka_mock_broker_push_request_error_rtts(
                                   s->mcluster, b, (int16_t)api, 1, RD_KAFKA_RESP_ERR_NO_ERROR, ms),
                               reply, replysz) == -1)
                return -1;
    }
    return 0;
}

static int km_cmd_topic(struct km_server *s, char **argv, char *reply, size_t replysz)
{
    int rf = s->opt->brokers < KM_RF_MAX ? s->opt->brokers : KM_RF_MAX;
    int partitions;

    if (strcmp(argv[1], "create") != 0)
        return km_fail(reply, replysz, "usage: topic create <name> <partitions>");
    if (km_parse_int(argv[3], 1, KM_PARTITIONS_MAX, &partitions) == -1)
        return km_fail(reply, replysz, "partitions must be 1..%d", KM_PARTITIONS_MAX);
    if (strlen(argv[2]) > KM_TOPIC_NAME_MAX || s->topic_cnt >= KM_TOPICS_MAX)
        return km_fail(reply, replysz, "topic name over %d bytes or over %d topics",
                       KM_TOPIC_NAME_MAX, KM_TOPICS_MAX);
    if (km_mock_result(rd_kafka_mock_topic_create(s->mcluster, argv[2], partitions, rf), reply,
                       replysz) == -1)
        return -1;
    km_topic_put(s->topics, &s->topic_cnt, argv[2], strlen(argv[2]), partitions);
    return 0;
}

static int km_cmd_leader(struct km_server *s, char **argv, char *reply, size_t replysz)
{
    int partition;
    int id = -1;

    if (km_parse_int(argv[2], 0, KM_PARTITIONS_MAX - 1, &partition) == -1 ||
        (strcmp(argv[3], "-1") != 0 && km_parse_broker(s, argv[3], 0, &id) == -1))
        return km_fail(reply, replysz, "usage: leader <topic> <partition> <1..%d|-1>",
                       s->opt->brokers);
    return km_mock_result(rd_kafka_mock_partition_set_leader(s->mcluster, argv[1], partition, id),
                          reply, replysz);
}

static int km_cmd_coordinator(struct km_server *s, char **argv, char *reply, size_t replysz)
{
    int id;

    if (strcmp(argv[1], "group") != 0 && strcmp(argv[1], "transaction") != 0)
        return km_fail(reply, replysz, "usage: coordinator group|transaction <key> <id>");
    if (km_parse_broker(s, argv[3], 0, &id) == -1)
        return km_fail(reply, replysz, "broker must be 1..%d", s->opt->brokers);
    return km_mock_result(rd_kafka_mock_coordinator_set(s->mcluster, argv[1], argv[2], id), reply,
                          replysz);
}

static int km_cmd_quit(struct km_server *s, char **argv, char *reply, size_t replysz)
{
    (void)argv;
    (void)reply;
    (void)replysz;
    s->quit = 1;
    return 0;
}

static int km_cmd_help(struct km_server *s, char **argv, char *reply, size_t replysz);

/* The whole protocol; `help` prints the usage column. */
static const struct {
    const char *name;
    int min_words, max_words; /* including the name */
    const char *usage;
    km_cmd_fn run;
} km_cmds[] = {
    {"status", 1, 1, "status", km_cmd_status},
    {"broker", 3, 3, "broker down|up <id|all>", km_cmd_broker},
    {"rtt", 3, 3, "rtt <id|all> <ms>", km_cmd_rtt},
    {"errors", 3, 4, "errors <Api> <count> <Error> | errors <Api> clear", km_cmd_errors},
    {"delay", 5, 5, "delay <id|all> <Api> <count> <ms>", km_cmd_delay},
    {"topic", 4, 4, "topic create <name> <partitions>", km_cmd_topic},
    {"leader", 4, 4, "leader <topic> <partition> <id|-1>", km_cmd_leader},
    {"coordinator", 4, 4, "coordinator group|transaction <key> <id>", km_cmd_coordinator},
    {"help", 1, 1, "help", km_cmd_help},
    {"quit", 1, 1, "quit", km_cmd_quit},
};

static int km_cmd_help(struct km_server *s, char **argv, char *reply, size_t replysz)
{
    size_t off = (size_t)snprintf(reply, replysz, "ok commands:");
    size_t i;

    (void)s;
    (void)argv;
    for (i = 0; i < sizeof(km_cmds) / sizeof(km_cmds[0]) && off < replysz; i++)
        off += (size_t)snprintf(reply + off, replysz - off, " %s;", km_cmds[i].usage);
    return 0;
}

/* Runs one control line (NUL-terminated, no newline); fills reply with "ok..."/"err ...". */
static void km_exec(struct km_server *s, char *line, char *reply, size_t replysz)
{
    char *argv[KM_ARGS_MAX + 1] = {NULL};
    char *save = NULL;
    char *tok;
    int argc = 0;
    size_t i;

    for (tok = strtok_r(line, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
        if (argc == KM_ARGS_MAX) {
            km_fail(reply, replysz, "too many words");
            return;
        }
        argv[argc++] = tok;
    }
    if (argc == 0) {
        km_fail(reply, replysz, "empty command");
        return;
    }
    for (i = 0; i < sizeof(km_cmds) / sizeof(km_cmds[0]); i++) {
        if (strcmp(argv[0], km_cmds[i].name) != 0)
            continue;
        if (argc < km_cmds[i].min_words || argc > km_cmds[i].max_words) {
            km_fail(reply, replysz, "usage: %s", km_cmds[i].usage);
            return;
        }
        snprintf(reply, replysz, "ok");
        km_cmds[i].run(s, argv, reply, replysz);
        return;
    }
    km_fail(reply, replysz, "unknown command %.64s (try help)", argv[0]);
}

/* ---- control channel I/O ------------------------------------------------------------ */

static void km_conn_close(struct km_conn *c)
{
    if (c->in_fd > 0) /* never close stdin's 0 */
        close(c->in_fd);
    c->in_fd = -1;
    c->len = 0;
    c->overflow = 0;
}

/* Handles one complete line (without newline); -1 if the reply could not be sent. */
static int km_conn_line(struct km_server *s, struct km_conn *c, char *line, size_t len)
{
    char reply[KM_REPLY_MAX];
    size_t n;

    while (len > 0 && isspace((unsigned char)line[len - 1]))
        len--;
    line[len] = '\0';
    while (isspace((unsigned char)*line))
        line++;
    if (c->overflow)
        snprintf(reply, sizeof(reply), "err line longer than %d bytes", KM_LINE_MAX - 1);
    else if (*line == '\0' || *line == '#')
        return 0; /* blank lines and comments get no reply */
    else
        km_exec(s, line, reply, sizeof(reply) - 1);
    n = strlen(reply);
    reply[n++] = '\n';
    return km_write_all(c->out_fd, reply, n);
}

/* Reads what is available; returns -1 on EOF/error (caller closes the peer). */
static int km_conn_read(struct km_server *s, struct km_conn *c)
{
    ssize_t n = read(c->in_fd, c->buf + c->len, sizeof(c->buf) - c->len);
    size_t start = 0;
    size_t i;

    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return 0;
    if (n <= 0)
        return -1;
    c->len += (size_t)n;
    for (i = 0; i < c->len; i++) {
        if (c->buf[i] != '\n')
            continue;
        if (km_conn_line(s, c, c->buf + start, i - start) == -1)
            return -1;
        c->overflow = 0;
        start = i + 1;
    }
    memmove(c->buf, c->buf + start, c->len - start);
    c->len -= start;
    if (c->len == sizeof(c->buf)) {
        /* No newline within KM_LINE_MAX: drop the bytes, answer at the newline. */
        c->overflow = 1;
        c->len = 0;
    }
    return 0;
}

static void km_accept(struct km_server *s)
{
    int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    int i;

    if (fd < 0)
        return;
    for (i = 0; i < KM_CLIENTS_MAX; i++) {
        if (s->conns[i].in_fd == -1) {
            s->conns[i].in_fd = fd;
            s->conns[i].out_fd = fd;
            return;
        }
    }
    km_write_all(fd, "err too many control connections\n", 33);
    close(fd);
}

static int km_loop(struct km_server *s)
{
    while (!s->quit) {
        struct pollfd pfd[KM_CLIENTS_MAX + 3];
        struct km_conn *owner[KM_CLIENTS_MAX + 3];
        int n = 0;
        int i;

        pfd[n] = (struct pollfd){.fd = s->sig_fd, .events = POLLIN};
        owner[n++] = NULL;
        if (s->listen_fd >= 0) {
            pfd[n] = (struct pollfd){.fd = s->listen_fd, .events = POLLIN};
            owner[n++] = NULL;
        }
        if (s->stdin_conn.in_fd == 0) {
            pfd[n] = (struct pollfd){.fd = 0, .events = POLLIN};
            owner[n++] = &s->stdin_conn;
        }
        for (i = 0; i < KM_CLIENTS_MAX; i++) {
            if (s->conns[i].in_fd >= 0) {
                pfd[n] = (struct pollfd){.fd = s->conns[i].in_fd, .events = POLLIN};
                owner[n++] = &s->conns[i];
            }
        }
        if (poll(pfd, (nfds_t)n, -1) < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "kafka-mock: poll: %s\n", strerror(errno));
            return -1;
        }
        if (pfd[0].revents) {
            struct signalfd_siginfo si;

            if (read(s->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
                fprintf(stderr, "kafka-mock: signal %u, shutting down\n", si.ssi_signo);
            return 0;
        }
        for (i = 1; i < n && !s->quit; i++) {
            if (!pfd[i].revents)
                continue;
            if (!owner[i]) {
                km_accept(s);
                continue;
            }
            if (km_conn_read(s, owner[i]) == -1) {
                /* stdin closing means whoever owns us is gone: shut down. */
                if (owner[i] == &s->stdin_conn)
                    s->quit = 1;
                km_conn_close(owner[i]);
            }
        }
    }
    return 0;
}

static void km_shutdown(struct km_server *s)
{
    struct stat st;
    int i;

    for (i = 0; i < KM_CLIENTS_MAX; i++)
        if (s->conns[i].in_fd >= 0)
            km_conn_close(&s->conns[i]);
    if (s->listen_fd >= 0) {
        if (stat(s->opt->control_socket, &st) == 0 && st.st_dev == s->socket_st.st_dev &&
            st.st_ino == s->socket_st.st_ino)
            unlink(s->opt->control_socket);
        close(s->listen_fd);
    }
    /* Only our own files: a successor may already have replaced them with its own. */
    if (s->wrote_bootstrap_file && stat(s->opt->bootstrap_file, &st) == 0 &&
        st.st_dev == s->bootstrap_st.st_dev && st.st_ino == s->bootstrap_st.st_ino)
        unlink(s->opt->bootstrap_file);
    /* Often instant, but librdkafka 2.0.2 sometimes needs up to 1 s here (README). */
    if (s->mcluster)
        rd_kafka_mock_cluster_destroy(s->mcluster);
    if (s->rk)
        rd_kafka_destroy(s->rk);
    if (s->sig_fd >= 0)
        close(s->sig_fd);
}

/*
 * Client mode, `kafka-mock --ctl PATH WORD...`: sends one command line and prints the
 * reply, for shell scripts on machines without nc or socat. Exit 0 on "ok", 1 on "err",
 * 2 when the mock cannot be reached or does not answer within 10 s.
 */
static int km_ctl_client(const char *path, int argc, char **argv)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    const struct timeval timeout = {.tv_sec = 10};
    char line[KM_LINE_MAX];
    char reply[KM_REPLY_MAX];
    size_t off = 0;
    size_t got = 0;
    int rc = 2;
    int fd = -1;
    int i;

    for (i = 0; i < argc; i++) {
        int n = snprintf(line + off, sizeof(line) - off, "%s%s", i ? " " : "", argv[i]);

        if (n < 0 || (size_t)n >= sizeof(line) - off - 1) {
            fprintf(stderr, "kafka-mock: command longer than %d bytes\n", KM_LINE_MAX - 2);
            return 2;
        }
        off += (size_t)n;
    }
    line[off++] = '\n';
    if (strlen(path) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "kafka-mock: socket path too long\n");
        return 2;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout)) == -1 ||
        connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 ||
        km_write_all(fd, line, off) == -1) {
        fprintf(stderr, "kafka-mock: %s: %s\n", path, strerror(errno));
        goto out;
    }
    while (got < sizeof(reply) - 1 && !memchr(reply, '\n', got)) {
        ssize_t n = read(fd, reply + got, sizeof(reply) - 1 - got);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fprintf(stderr, "kafka-mock: %s: no reply\n", path);
            goto out;
        }
        got += (size_t)n;
    }
    reply[got] = '\0';
    fputs(reply, stdout);
    rc = strncmp(reply, "ok", 2) == 0 ? 0 : 1;
out:
    if (fd >= 0)
        close(fd);
    return rc;
}

int main(int argc, char **argv)
{
    static struct km_options opt;
    static struct km_server s;
    char errstr[512];
    sigset_t mask;
    int i;
    int rc = 1;

    if (argc >= 4 && !strcmp(argv[1], "--ctl"))
        return km_ctl_client(argv[2], argc - 3, argv + 3);
    km_parse_args(argc, argv, &opt);
    s.opt = &opt;
    s.sig_fd = -1;
    s.listen_fd = -1;
    s.stdin_conn.in_fd = opt.stdin_control ? 0 : -1;
    s.stdin_conn.out_fd = 1;
    for (i = 0; i < KM_CLIENTS_MAX; i++)
        s.conns[i].in_fd = -1;

    /* Before any librdkafka thread exists, so every thread inherits the mask. */
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    if (pthread_sigmask(SIG_BLOCK, &mask, NULL) != 0 ||
        (s.sig_fd = signalfd(-1, &mask, SFD_CLOEXEC)) < 0) {
        fprintf(stderr, "kafka-mock: signalfd: %s\n", strerror(errno));
        goto out;
    }
    if (km_cluster_start(&s, errstr, sizeof(errstr)) == -1 ||
        (opt.control_socket && km_listen(&s, errstr, sizeof(errstr)) == -1) ||
        km_announce(&s, errstr, sizeof(errstr)) == -1) {
        fprintf(stderr, "kafka-mock: %s\n", errstr);
        goto out;
    }
    if (km_loop(&s) == 0)
        rc = 0;
out:
    km_shutdown(&s);
    return rc;
}
