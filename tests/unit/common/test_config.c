/* test_config.c - the settings engine as an operator meets it: values in every type,
 * bounds, the four sources and their precedence, config-file and flag mistakes,
 * secrets from *_FILE, librdkafka pass-through onto a real rd_kafka_conf_t, and that
 * secrets never show in dumps or messages. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/config.h"

static const char *const modes[] = {"fast", "safe", NULL};

/* clang-format off */
static const struct config_def table[] = {
    {"worker.threads", CONFIG_INT, "16", 1, 256, "Threads.", 0, NULL},
    {"a.flag", CONFIG_BOOL, "false", 0, 0, "A switch.", 0, NULL},
    {"a.wait", CONFIG_DURATION, "30s", 100, 3600000, "A wait.", 0, NULL},
    {"a.size", CONFIG_SIZE, "1MiB", 1024, 64LL << 20, "A size.", 0, NULL},
    {"a.mode", CONFIG_ENUM, "safe", 0, 0, "A mode.", 0, modes},
    {"a.items", CONFIG_LIST, "x,y", 0, 0, "Some items.", 0, NULL},
    {"a.few", CONFIG_LIST, "1", 1, 3, "One to three items.", 0, NULL},
    {"a.name", CONFIG_STRING, "abc", 1, 10, "A short name.", 0, NULL},
    {"a.note", CONFIG_STRING, NULL, 0, 0, "Free text.", 0, NULL},
    {"a.host", CONFIG_STRING, NULL, 0, 0, "A host to reach.", CONFIG_REQUIRED, NULL},
    {"sec.token", CONFIG_STRING, NULL, 8, 64, "A token.", CONFIG_SECRET, NULL},
    {"sec.pin", CONFIG_INT, "1234", 1000, 9999, "A PIN.", CONFIG_SECRET, NULL},
    {"kafka.group.id", CONFIG_STRING, "grp", 1, 249, "Group.", 0, NULL},
};
/* clang-format on */
#define NTABLE (sizeof(table) / sizeof(table[0]))

static char err[1024];

/* Loads the table from argv (argv[0] is a placeholder) and envp; NULL on failure. */
static struct config *load_ex(char **argv, char **envp)
{
    struct config *cfg = config_new(table, NTABLE, "HSQB_", err, sizeof(err));
    int argc = 0;

    assert_non_null(cfg);
    while (argv != NULL && argv[argc] != NULL)
        argc++;
    err[0] = '\0';
    if (config_load(cfg, argc, argv, envp, err, sizeof(err)) < 0) {
        config_free(cfg);
        return NULL;
    }
    return cfg;
}

#define ARGV(...) ((char *[]){"prog", __VA_ARGS__, NULL})
#define ENVP(...) ((char *[]){__VA_ARGS__, NULL})

static struct config *flag1(const char *flag)
{
    return load_ex(ARGV((char *)flag), NULL);
}

/* Writes content to a fresh temporary file; caller unlinks and frees the path. */
static char *tmpfile_with(const char *content)
{
    char *path = strdup("/tmp/hsqb-test-config-XXXXXX");
    int fd;

    assert_non_null(path);
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
    return path;
}

static void rm(char *path)
{
    unlink(path);
    free(path);
}

static char *dump_of(const struct config *cfg)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    config_dump(cfg, f);
    fclose(f);
    return buf;
}

static void expect_error(struct config *cfg, const char *needle)
{
    if (cfg != NULL)
        config_free(cfg);
    assert_null(cfg);
    if (strstr(err, needle) == NULL)
        fail_msg("error \"%s\" lacks \"%s\"", err, needle);
}

/* ---- values and types ----------------------------------------------------------------- */

static void test_defaults_by_type(void **state)
{
    struct config *cfg = load_ex(NULL, NULL);
    size_t n;
    const char *const *items;

    (void)state;
    assert_non_null(cfg);
    assert_int_equal(config_get_int(cfg, "worker.threads"), 16);
    assert_false(config_get_bool(cfg, "a.flag"));
    assert_int_equal(config_get_ms(cfg, "a.wait"), 30000);
    assert_int_equal(config_get_bytes(cfg, "a.size"), 1 << 20);
    assert_string_equal(config_get_str(cfg, "a.mode"), "safe");
    items = config_get_list(cfg, "a.items", &n);
    assert_int_equal(n, 2);
    assert_string_equal(items[0], "x");
    assert_string_equal(items[1], "y");
    assert_null(items[2]);
    assert_string_equal(config_get_str(cfg, "a.name"), "abc");
    assert_string_equal(config_get_str(cfg, "a.note"), "");
    assert_false(config_is_set(cfg, "worker.threads"));
    assert_string_equal(config_where(cfg, "worker.threads"), "default");
    config_free(cfg);
}

static void test_int_bounds_and_syntax(void **state)
{
    struct config *cfg;

    (void)state;
    expect_error(load_ex(NULL, ENVP("HSQB_WORKER_THREADS=0")), "");
    assert_string_equal(
        err, "worker.threads: value 0 out of range [1, 256] (from env HSQB_WORKER_THREADS)");
    expect_error(flag1("--worker.threads=257"), "value 257 out of range [1, 256]");
    expect_error(flag1("--worker.threads=12abc"), "\"12abc\" is not an integer");
    expect_error(flag1("--worker.threads= 5"), "is not an integer");
    expect_error(flag1("--worker.threads=99999999999999999999"), "is not an integer");
    cfg = flag1("--worker.threads=256");
    assert_non_null(cfg);
    assert_int_equal(config_get_int(cfg, "worker.threads"), 256);
    config_free(cfg);
}

static void test_bool_spellings(void **state)
{
    static const char *const yes[] = {"true", "YES", "on", "1", "True"};
    static const char *const no[] = {"false", "no", "OFF", "0"};
    char flag[64];
    struct config *cfg;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        snprintf(flag, sizeof(flag), "--a.flag=%s", yes[i]);
        cfg = flag1(flag);
        assert_non_null(cfg);
        assert_true(config_get_bool(cfg, "a.flag"));
        config_free(cfg);
    }
    for (i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        snprintf(flag, sizeof(flag), "--a.flag=%s", no[i]);
        cfg = flag1(flag);
        assert_non_null(cfg);
        assert_false(config_get_bool(cfg, "a.flag"));
        config_free(cfg);
    }
    expect_error(flag1("--a.flag=maybe"), "a.flag: \"maybe\" is not a boolean");
}

static void test_durations(void **state)
{
    static const struct {
        const char *in;
        int64_t ms;
    } good[] = {{"250ms", 250},    {"30s", 30000},     {"5m", 300000}, {"1h", 3600000},
                {"7d", 604800000}, {"1h30m", 5400000}, {"1500", 1500}, {"0", 0}};
    static const char *const bad[] = {"",
                                      "1.5s",
                                      "5 s",
                                      "5x",
                                      "s",
                                      "-1s",
                                      "1H",
                                      "10sm",
                                      "99999999999999999999d",
                                      "9999999999999999d"};
    struct config *cfg;
    int64_t ms;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_int_equal(config_parse_duration(good[i].in, &ms), 0);
        assert_int_equal(ms, good[i].ms);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (config_parse_duration(bad[i], &ms) == 0)
            fail_msg("duration \"%s\" was accepted", bad[i]);
    cfg = flag1("--a.wait=5m");
    assert_non_null(cfg);
    assert_int_equal(config_get_ms(cfg, "a.wait"), 300000);
    assert_string_equal(config_shown(cfg, "a.wait"), "5m");
    config_free(cfg);
    expect_error(flag1("--a.wait=50ms"), "a.wait: value 50ms out of range [100ms, 1h] (from flag "
                                         "--a.wait)");
    expect_error(flag1("--a.wait=soon"), "\"soon\" is not a duration");
}

static void test_sizes(void **state)
{
    static const struct {
        const char *in;
        int64_t bytes;
    } good[] = {{"1MiB", 1 << 20},  {"64KiB", 65536},    {"1000", 1000}, {"1kB", 1000},
                {"1 MiB", 1 << 20}, {"2gib", 2LL << 30}, {"512B", 512},  {"3MB", 3000000}};
    static const char *const bad[] = {"", "1.5MiB", "MiB", "1XB", "-1", "99999999999TiB"};
    struct config *cfg;
    int64_t b;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_int_equal(config_parse_size(good[i].in, &b), 0);
        assert_int_equal(b, good[i].bytes);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (config_parse_size(bad[i], &b) == 0)
            fail_msg("size \"%s\" was accepted", bad[i]);
    cfg = flag1("--a.size=64KiB");
    assert_non_null(cfg);
    assert_int_equal(config_get_bytes(cfg, "a.size"), 65536);
    config_free(cfg);
    expect_error(flag1("--a.size=512"), "a.size: value 512B out of range [1KiB, 64MiB]");
    expect_error(flag1("--a.size=huge"), "\"huge\" is not a size");
}

static void test_enum_and_string(void **state)
{
    struct config *cfg = flag1("--a.mode=FAST");

    (void)state;
    assert_non_null(cfg);
    assert_string_equal(config_get_str(cfg, "a.mode"), "fast");
    config_free(cfg);
    expect_error(flag1("--a.mode=slow"), "a.mode: \"slow\" is not one of: fast, safe");
    expect_error(flag1("--a.name="), "a.name: length 0 out of range [1, 10]");
    expect_error(flag1("--a.name=abcdefghijk"), "length 11 out of range");
    cfg = flag1("--a.note=");
    assert_non_null(cfg);
    assert_string_equal(config_get_str(cfg, "a.note"), "");
    assert_true(config_is_set(cfg, "a.note"));
    config_free(cfg);
}

static void test_lists(void **state)
{
    struct config *cfg = flag1("--a.items= a , b,c ");
    const char *const *items;
    size_t n;

    (void)state;
    assert_non_null(cfg);
    items = config_get_list(cfg, "a.items", &n);
    assert_int_equal(n, 3);
    assert_string_equal(items[0], "a");
    assert_string_equal(items[2], "c");
    assert_string_equal(config_shown(cfg, "a.items"), "a,b,c");
    config_free(cfg);
    cfg = flag1("--a.items=");
    assert_non_null(cfg);
    config_get_list(cfg, "a.items", &n);
    assert_int_equal(n, 0);
    config_free(cfg);
    expect_error(flag1("--a.items=a,,b"), "a.items: empty item in list");
    expect_error(flag1("--a.few=1,2,3,4"), "a.few: 4 items, allowed [1, 3]");
}

/* ---- sources -------------------------------------------------------------------------- */

static void test_precedence_of_all_sources(void **state)
{
    char *path = tmpfile_with("worker.threads = 2\na.name = file\na.note = file\n"
                              "a.mode = fast\n");
    char cflag[128];
    struct config *cfg;

    (void)state;
    snprintf(cflag, sizeof(cflag), "--config=%s", path);
    cfg = load_ex(ARGV(cflag, "--a.name", "flag"),
                  ENVP("HSQB_A_NAME=env", "HSQB_A_NOTE=env", "HSQB_A_WAIT=1m"));
    assert_non_null(cfg);
    /* file only */
    assert_int_equal(config_get_int(cfg, "worker.threads"), 2);
    snprintf(cflag, sizeof(cflag), "%s:1", path);
    assert_string_equal(config_where(cfg, "worker.threads"), cflag);
    /* file < env */
    assert_string_equal(config_get_str(cfg, "a.note"), "env");
    assert_string_equal(config_where(cfg, "a.note"), "env HSQB_A_NOTE");
    /* file < env < flag */
    assert_string_equal(config_get_str(cfg, "a.name"), "flag");
    assert_string_equal(config_where(cfg, "a.name"), "flag --a.name");
    /* env only, and default */
    assert_int_equal(config_get_ms(cfg, "a.wait"), 60000);
    assert_string_equal(config_where(cfg, "a.size"), "default");
    assert_true(config_is_set(cfg, "a.mode"));
    assert_false(config_is_set(cfg, "a.size"));
    config_free(cfg);
    rm(path);
}

static void test_config_file_syntax(void **state)
{
    char *path = tmpfile_with("# a comment\n"
                              "\n"
                              "   # indented comment\n"
                              "a.note = \"quoted # not a comment \\\"x\\\" \\\\ \"  # comment\n"
                              "a.name='a#b'\r\n"
                              "a.items = p#q, r # trailing comment\n"
                              "kafka.client.id = from-file\n");
    char cflag[128];
    struct config *cfg;

    (void)state;
    snprintf(cflag, sizeof(cflag), "--config=%s", path);
    cfg = load_ex(ARGV(cflag), NULL);
    if (cfg == NULL)
        fail_msg("%s", err);
    assert_string_equal(config_get_str(cfg, "a.note"), "quoted # not a comment \"x\" \\ ");
    assert_string_equal(config_get_str(cfg, "a.name"), "a#b");
    assert_string_equal(config_shown(cfg, "a.items"), "p#q,r");
    assert_string_equal(config_kafka_get(cfg, "client.id"), "from-file");
    config_free(cfg);
    rm(path);
}

/* Expects the message `before` + the file's path + `after`. */
static void expect_file_error(const char *content, const char *before, const char *after)
{
    char *path = tmpfile_with(content);
    char cflag[128], want[512];

    snprintf(cflag, sizeof(cflag), "--config=%s", path);
    snprintf(want, sizeof(want), "%s%s%s", before, path, after);
    expect_error(load_ex(ARGV(cflag), NULL), want);
    rm(path);
}

static void test_config_file_errors(void **state)
{
    (void)state;
    expect_file_error("# ok\nworker.thread = 3\n", "",
                      ":2: unknown key \"worker.thread\" (did you mean \"worker.threads\"?)");
    expect_file_error("\n\nnonsense.key = 1\n", "", ":3: unknown key \"nonsense.key\"");
    expect_file_error("a.name\n", "", ":1: expected \"key = value\"");
    expect_file_error("a.name = \"open\n", "", ":1: unterminated double quote");
    expect_file_error("a.name = \"x\" y\n", "", ":1: unexpected text after the quoted value");
    expect_file_error("a.name = x\n#\na.name = y\n", "",
                      ":3: duplicate key \"a.name\" (first set at line 1)");
    expect_file_error("a.flag = true\nworker.threads = 0\n",
                      "worker.threads: value 0 out of range [1, 256] (from ", ":2)");
    expect_error(load_ex(ARGV("--config", "/nonexistent/hsqb.conf"), NULL),
                 "config file /nonexistent/hsqb.conf: No such file or directory (from flag "
                 "--config)");
}

static void test_config_file_from_env(void **state)
{
    char *path = tmpfile_with("worker.threads = 7\n");
    char env[128];
    struct config *cfg;

    (void)state;
    snprintf(env, sizeof(env), "HSQB_CONFIG=%s", path);
    cfg = load_ex(NULL, ENVP(env));
    assert_non_null(cfg);
    assert_int_equal(config_get_int(cfg, "worker.threads"), 7);
    assert_int_equal(config_ignored_env(cfg, NULL)[0] == NULL, 1);
    config_free(cfg);
    rm(path);
}

static void test_flags(void **state)
{
    struct config *cfg = load_ex(ARGV("--worker.threads", "9", "--a.flag=on"), NULL);

    (void)state;
    assert_non_null(cfg);
    assert_int_equal(config_get_int(cfg, "worker.threads"), 9);
    assert_true(config_get_bool(cfg, "a.flag"));
    config_free(cfg);
    expect_error(flag1("--worker.thread=3"),
                 "unknown flag --worker.thread (did you mean --worker.threads?)");
    expect_error(load_ex(ARGV("--worker.threads"), NULL), "flag --worker.threads needs a value");
    expect_error(load_ex(ARGV("--worker.threads", "--a.flag=1"), NULL), "needs a value");
    expect_error(load_ex(ARGV("run"), NULL), "unexpected argument \"run\"");
    expect_error(load_ex(ARGV("--config=a", "--config", "b"), NULL), "--config given twice");
}

static void test_secret_from_file(void **state)
{
    char *path = tmpfile_with("s3cret-token\n");
    char env[128];
    struct config *cfg;

    (void)state;
    snprintf(env, sizeof(env), "HSQB_SEC_TOKEN_FILE=%s", path);
    cfg = load_ex(NULL, ENVP(env));
    assert_non_null(cfg);
    assert_string_equal(config_get_str(cfg, "sec.token"), "s3cret-token");
    assert_string_equal(config_where(cfg, "sec.token"), "env HSQB_SEC_TOKEN_FILE");
    config_free(cfg);

    expect_error(load_ex(NULL, ENVP(env, "HSQB_SEC_TOKEN=other-token")),
                 "sec.token: both HSQB_SEC_TOKEN and HSQB_SEC_TOKEN_FILE are set; use one");
    expect_error(load_ex(NULL, ENVP("HSQB_SEC_TOKEN_FILE=/nonexistent/token")),
                 "sec.token: cannot read /nonexistent/token: No such file or directory (from env "
                 "HSQB_SEC_TOKEN_FILE)");
    /* _FILE exists only for secrets: for another key it is just an unknown variable */
    cfg = load_ex(NULL, ENVP("HSQB_A_NAME_FILE=/etc/hostname"));
    assert_non_null(cfg);
    assert_string_equal(config_ignored_env(cfg, NULL)[0], "HSQB_A_NAME_FILE");
    config_free(cfg);
    rm(path);
}

static void test_unknown_env_is_ignored_and_reported(void **state)
{
    struct config *cfg = load_ex(NULL, ENVP("HSQB_PORT=tcp://10.0.0.1:9108", "PATH=/bin",
                                            "HSQB_WORKER_THREADS=3", "HSQB_SERVICE_HOST=x"));
    const char *const *ign;
    size_t n;

    (void)state;
    assert_non_null(cfg);
    ign = config_ignored_env(cfg, &n);
    assert_int_equal(n, 2);
    assert_string_equal(ign[0], "HSQB_PORT");
    assert_string_equal(ign[1], "HSQB_SERVICE_HOST");
    assert_int_equal(config_get_int(cfg, "worker.threads"), 3);
    config_free(cfg);
}

static void test_required(void **state)
{
    struct config *cfg = load_ex(NULL, NULL);

    (void)state;
    assert_non_null(cfg);
    assert_int_equal(config_check_required(cfg, err, sizeof(err)), -1);
    assert_string_equal(err, "a.host: required but not set (set a.host in the config file, env "
                             "HSQB_A_HOST, or flag --a.host)");
    config_free(cfg);
    cfg = load_ex(NULL, ENVP("HSQB_A_HOST=db1"));
    assert_non_null(cfg);
    assert_int_equal(config_check_required(cfg, err, sizeof(err)), 0);
    config_free(cfg);
}

/* ---- librdkafka pass-through ---------------------------------------------------------- */

static void conf_get(rd_kafka_conf_t *conf, const char *name, char *buf, size_t sz)
{
    assert_int_equal(rd_kafka_conf_get(conf, name, buf, &sz), RD_KAFKA_CONF_OK);
}

static void test_kafka_passthrough_applies(void **state)
{
    char *path = tmpfile_with("kafka.client.id = from-file\nkafka.socket.timeout.ms = 1234\n");
    char cflag[128], v[256];
    struct config *cfg;
    rd_kafka_conf_t *conf;

    (void)state;
    snprintf(cflag, sizeof(cflag), "--config=%s", path);
    cfg = load_ex(ARGV(cflag, "--kafka.client.id=from-flag", "--kafka.group.id=mine"),
                  ENVP("HSQB_KAFKA__SECURITY_PROTOCOL=plaintext", "HSQB_KAFKA__LOG__LEVEL=3"));
    if (cfg == NULL)
        fail_msg("%s", err);
    assert_string_equal(config_kafka_get(cfg, "security.protocol"), "plaintext");
    assert_string_equal(config_kafka_where(cfg, "security.protocol"),
                        "env HSQB_KAFKA__SECURITY_PROTOCOL");
    assert_string_equal(config_kafka_get(cfg, "log_level"), "3");
    assert_string_equal(config_kafka_where(cfg, "client.id"), "flag --kafka.client.id");
    /* a table key is never a pass-through */
    assert_null(config_kafka_get(cfg, "group.id"));
    assert_string_equal(config_get_str(cfg, "kafka.group.id"), "mine");
    assert_int_equal(config_kafka_count(cfg), 4);

    conf = rd_kafka_conf_new();
    assert_int_equal(config_kafka_apply(cfg, conf, err, sizeof(err)), 0);
    conf_get(conf, "client.id", v, sizeof(v));
    assert_string_equal(v, "from-flag");
    conf_get(conf, "socket.timeout.ms", v, sizeof(v));
    assert_string_equal(v, "1234");
    conf_get(conf, "security.protocol", v, sizeof(v));
    assert_string_equal(v, "plaintext");
    conf_get(conf, "log_level", v, sizeof(v));
    assert_string_equal(v, "3");
    rd_kafka_conf_destroy(conf);
    config_free(cfg);
    rm(path);
}

static void apply_expect(char **argv, char **envp, const char *needle)
{
    struct config *cfg = load_ex(argv, envp);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();

    if (cfg == NULL)
        fail_msg("%s", err);
    assert_int_equal(config_kafka_apply(cfg, conf, err, sizeof(err)), -1);
    if (strstr(err, needle) == NULL)
        fail_msg("error \"%s\" lacks \"%s\"", err, needle);
    rd_kafka_conf_destroy(conf);
    config_free(cfg);
}

static void test_kafka_errors_report_librdkafka_text(void **state)
{
    (void)state;
    apply_expect(ARGV("--kafka.no.such.prop=1"), NULL,
                 "kafka.no.such.prop: No such configuration property: \"no.such.prop\" (from "
                 "flag --kafka.no.such.prop)");
    apply_expect(NULL, ENVP("HSQB_KAFKA__SECURITY_PROTOCOL=bogus"),
                 "kafka.security.protocol: Invalid value \"bogus\" for configuration property "
                 "\"security.protocol\" (from env HSQB_KAFKA__SECURITY_PROTOCOL)");
    expect_error(load_ex(NULL, ENVP("HSQB_KAFKA__GROUP_ID=x")),
                 "env HSQB_KAFKA__GROUP_ID: kafka.group.id is a setting; use HSQB_KAFKA_GROUP_ID");
    expect_error(load_ex(NULL, ENVP("HSQB_KAFKA___X=1")), "no librdkafka property name");
    expect_error(flag1("--kafka.Bad=1"), "unknown flag --kafka.Bad");
}

static void test_kafka_secret_file_and_redaction(void **state)
{
    char *path = tmpfile_with("kafka-pw\n");
    char env[128], *dump;
    struct config *cfg;
    rd_kafka_conf_t *conf;

    (void)state;
    snprintf(env, sizeof(env), "HSQB_KAFKA__SASL_PASSWORD_FILE=%s", path);
    cfg = load_ex(NULL, ENVP(env, "HSQB_KAFKA__SASL_USERNAME=bob"));
    if (cfg == NULL)
        fail_msg("%s", err);
    assert_string_equal(config_kafka_get(cfg, "sasl.password"), "kafka-pw");
    conf = rd_kafka_conf_new();
    assert_int_equal(config_kafka_apply(cfg, conf, err, sizeof(err)), 0);
    rd_kafka_conf_destroy(conf);
    dump = dump_of(cfg);
    assert_non_null(strstr(dump, "kafka.sasl.password = ***  # env "
                                 "HSQB_KAFKA__SASL_PASSWORD_FILE\n"));
    assert_non_null(strstr(dump, "kafka.sasl.username = bob  # env HSQB_KAFKA__SASL_USERNAME\n"));
    assert_null(strstr(dump, "kafka-pw"));
    free(dump);
    config_free(cfg);
    expect_error(load_ex(NULL, ENVP(env, "HSQB_KAFKA__SASL_PASSWORD=x")),
                 "kafka.sasl.password: both HSQB_KAFKA__SASL_PASSWORD and "
                 "HSQB_KAFKA__SASL_PASSWORD_FILE are set");
    rm(path);
}

/* ---- output and redaction ------------------------------------------------------------- */

static void test_dump_redacts_secrets(void **state)
{
    struct config *cfg =
        load_ex(ARGV("--a.note=has # hash"),
                ENVP("HSQB_SEC_TOKEN=topsecret-value", "HSQB_SEC_PIN=4321", "HSQB_BOGUS=1"));
    char *dump;

    (void)state;
    assert_non_null(cfg);
    dump = dump_of(cfg);
    assert_non_null(strstr(dump, "worker.threads = 16  # default\n"));
    assert_non_null(strstr(dump, "sec.token = ***  # env HSQB_SEC_TOKEN\n"));
    assert_non_null(strstr(dump, "sec.pin = ***  # env HSQB_SEC_PIN\n"));
    assert_non_null(strstr(dump, "a.note = \"has # hash\"  # flag --a.note\n"));
    assert_non_null(strstr(dump, "a.size = 1MiB  # default\n"));
    assert_non_null(strstr(dump, "# ignored environment variable HSQB_BOGUS"));
    assert_null(strstr(dump, "topsecret"));
    assert_null(strstr(dump, "4321"));
    assert_string_equal(config_shown(cfg, "sec.token"), "***");
    free(dump);
    config_free(cfg);
    /* an unset secret shows that it is unset */
    cfg = load_ex(NULL, NULL);
    dump = dump_of(cfg);
    assert_non_null(strstr(dump, "sec.token = \"\"  # default\n"));
    free(dump);
    config_free(cfg);
}

static void test_errors_redact_secrets(void **state)
{
    (void)state;
    expect_error(load_ex(NULL, ENVP("HSQB_SEC_TOKEN=short")),
                 "sec.token: length 5 out of range [8, 64] (from env HSQB_SEC_TOKEN)");
    assert_null(strstr(err, "short"));
    expect_error(load_ex(NULL, ENVP("HSQB_SEC_PIN=12")),
                 "sec.pin: value *** out of range [1000, 9999]");
    assert_null(strstr(err, "12 "));
    expect_error(load_ex(NULL, ENVP("HSQB_SEC_PIN=pin4321")), "sec.pin: *** is not an integer");
    assert_null(strstr(err, "4321"));
}

static void test_dump_reads_back(void **state)
{
    struct config *cfg = load_ex(
        ARGV("--a.note= spaced \"q\" \\ ", "--a.items=a,b", "--a.wait=90s", "--kafka.client.id=c1"),
        NULL);
    struct config *again;
    char *dump, *path, cflag[128];

    (void)state;
    assert_non_null(cfg);
    dump = dump_of(cfg);
    path = tmpfile_with(dump);
    snprintf(cflag, sizeof(cflag), "--config=%s", path);
    again = load_ex(ARGV(cflag), NULL);
    if (again == NULL)
        fail_msg("%s\n%s", err, dump);
    assert_string_equal(config_get_str(again, "a.note"), " spaced \"q\" \\ ");
    assert_string_equal(config_shown(again, "a.items"), "a,b");
    assert_int_equal(config_get_ms(again, "a.wait"), 90000);
    assert_string_equal(config_kafka_get(again, "client.id"), "c1");
    config_free(again);
    config_free(cfg);
    free(dump);
    rm(path);
}

static char *text_of(void (*fn)(const struct config *, FILE *), const struct config *cfg)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    fn(cfg, f);
    fclose(f);
    return buf;
}

static void test_help_and_markdown(void **state)
{
    struct config *cfg = load_ex(NULL, NULL);
    char *help = text_of(config_help, cfg), *md = text_of(config_markdown, cfg);

    (void)state;
    assert_non_null(strstr(help, "  --worker.threads=INT  (default 16)\n"));
    assert_non_null(strstr(help, "Threads. Allowed: [1, 256].\n      env HSQB_WORKER_THREADS\n"));
    assert_non_null(strstr(help, "--a.mode=fast|safe  (default safe)"));
    assert_non_null(strstr(help, "--a.host=STRING  (required)"));
    assert_non_null(strstr(help, "env HSQB_SEC_TOKEN or HSQB_SEC_TOKEN_FILE"));
    assert_non_null(strstr(help, "HSQB_KAFKA__<PROPERTY>"));
    assert_non_null(strstr(md, "| Key | Environment | Type | Default | Allowed | Description |"));
    assert_non_null(strstr(md,
                           "| `worker.threads` | `HSQB_WORKER_THREADS` | int | `16` | [1, 256] | "
                           "Threads. |\n"));
    assert_non_null(strstr(md, "| `a.mode` | `HSQB_A_MODE` | enum | `safe` | `fast`, `safe` |"));
    assert_non_null(strstr(md, "| `a.host` | `HSQB_A_HOST` | string | *required* |"));
    assert_non_null(strstr(md, "`HSQB_SEC_TOKEN_FILE`"));
    free(help);
    free(md);
    config_free(cfg);
}

/* ---- the table itself ----------------------------------------------------------------- */

static void test_bad_tables_are_rejected(void **state)
{
    static const struct config_def out_of_bounds[] = {{"n", CONFIG_INT, "0", 1, 10, "N.", 0, NULL}};
    static const struct config_def same_env[] = {{"a.b_c", CONFIG_INT, "1", 0, 10, "X.", 0, NULL},
                                                 {"a_b.c", CONFIG_INT, "1", 0, 10, "Y.", 0, NULL}};
    static const struct config_def bad_name[] = {
        {"Bad.Name", CONFIG_INT, "1", 0, 10, "X.", 0, NULL}};
    static const struct config_def required_default[] = {
        {"host", CONFIG_STRING, "x", 0, 0, "X.", CONFIG_REQUIRED, NULL}};
    static const struct config_def file_clash[] = {
        {"tok", CONFIG_STRING, NULL, 0, 0, "X.", CONFIG_SECRET, NULL},
        {"tok.file", CONFIG_STRING, NULL, 0, 0, "Y.", 0, NULL}};

    (void)state;
    assert_null(config_new(out_of_bounds, 1, "T_", err, sizeof(err)));
    assert_non_null(strstr(err, "n: value 0 out of range [1, 10] (from default)"));
    assert_null(config_new(same_env, 2, "T_", err, sizeof(err)));
    assert_non_null(strstr(err, "share env T_A_B_C"));
    assert_null(config_new(bad_name, 1, "T_", err, sizeof(err)));
    assert_null(config_new(required_default, 1, "T_", err, sizeof(err)));
    assert_null(config_new(file_clash, 2, "T_", err, sizeof(err)));
}

static void test_misuse_aborts(void **state)
{
    static const char *const keys[] = {"no.such.key", "a.name"};
    struct config *cfg = load_ex(NULL, NULL);
    size_t i;

    (void)state;
    for (i = 0; i < 2; i++) {
        int status;
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            int fd = open("/dev/null", O_WRONLY);
            dup2(fd, 2);
            (void)config_get_int(cfg, keys[i]); /* unknown key, then wrong type */
            _exit(0);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status));
        assert_int_equal(WTERMSIG(status), SIGABRT);
    }
    config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_by_type),
        cmocka_unit_test(test_int_bounds_and_syntax),
        cmocka_unit_test(test_bool_spellings),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_enum_and_string),
        cmocka_unit_test(test_lists),
        cmocka_unit_test(test_precedence_of_all_sources),
        cmocka_unit_test(test_config_file_syntax),
        cmocka_unit_test(test_config_file_errors),
        cmocka_unit_test(test_config_file_from_env),
        cmocka_unit_test(test_flags),
        cmocka_unit_test(test_secret_from_file),
        cmocka_unit_test(test_unknown_env_is_ignored_and_reported),
        cmocka_unit_test(test_required),
        cmocka_unit_test(test_kafka_passthrough_applies),
        cmocka_unit_test(test_kafka_errors_report_librdkafka_text),
        cmocka_unit_test(test_kafka_secret_file_and_redaction),
        cmocka_unit_test(test_dump_redacts_secrets),
        cmocka_unit_test(test_errors_redact_secrets),
        cmocka_unit_test(test_dump_reads_back),
        cmocka_unit_test(test_help_and_markdown),
        cmocka_unit_test(test_bad_tables_are_rejected),
        cmocka_unit_test(test_misuse_aborts),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
