/* config_load.c - the three sources of a config: the file, the environment, the flags.
 *
 * Each source turns its text into (key, value, where) and hands it to cfg_set_key(),
 * which owns parsing and messages; this file only owns the syntax of each source and
 * the order (file < env < flags). The environment is a caller's envp, never environ
 * directly, so tests inject it.
 */
#include "common/config.h"
#include "common/config_internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#define CONFIG_MAX_LINE        65536 /* one config-file line */
#define CONFIG_MAX_SECRET_FILE 65536 /* one *_FILE secret */

extern char **environ;

static const char *envlookup(char *const *envp, const char *name)
{
    size_t n = strlen(name);

    for (; envp && *envp; envp++)
        if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=')
            return *envp + n + 1;
    return NULL;
}

/* Levenshtein distance, capped: enough to suggest a near-miss key. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), i, j, prev, cur, tmp;
    size_t row[128];

    if (la >= sizeof(row) / sizeof(row[0]) || lb >= sizeof(row) / sizeof(row[0]))
        return (size_t)-1;
    for (j = 0; j <= lb; j++)
        row[j] = j;
    for (i = 1; i <= la; i++) {
        prev = row[0];
        row[0] = i;
        for (j = 1; j <= lb; j++) {
            cur = prev + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < cur)
                cur = row[j] + 1;
            if (row[j - 1] + 1 < cur)
                cur = row[j - 1] + 1;
            tmp = row[j];
            row[j] = cur;
            prev = tmp;
        }
    }
    return row[lb];
}

static const char *suggest(const struct config *cfg, const char *key)
{
    size_t i, best = 3, dist;
    const char *hit = NULL;

    for (i = 0; i < cfg->ndefs; i++) {
        dist = edit_distance(key, cfg->defs[i].name);
        if (dist < best) {
            best = dist;
            hit = cfg->defs[i].name;
        }
    }
    return hit;
}

static void unknown_key(const struct config *cfg, const char *what, const char *key, int flag,
                        char *errstr, size_t errsz)
{
    const char *near = suggest(cfg, key);
    char hint[256] = "";

    if (near)
        snprintf(hint, sizeof(hint), " (did you mean %s%s%s?)", flag ? "--" : "\"", near,
                 flag ? "" : "\"");
    if (flag)
        cfg_err(errstr, errsz, "%sunknown flag --%s%s", what, key, hint);
    else
        cfg_err(errstr, errsz, "%sunknown key \"%s\"%s", what, key, hint);
}

/* ---- the config file ------------------------------------------------------------------ */

/* Splits "key = value" in place. Returns 0, or -1 with a message (no location). */
static int parse_line(char *line, char **key, char **value, char *msg, size_t msgsz)
{
    char *eq = strchr(line, '='), *v, *o;

    if (!eq) {
        cfg_err(msg, msgsz, "expected \"key = value\"");
        return -1;
    }
    *eq = '\0';
    *key = cfg_trim(line);
    if (**key == '\0') {
        cfg_err(msg, msgsz, "missing key before '='");
        return -1;
    }
    v = eq + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    if (*v == '"' || *v == '\'') {
        char q = *v++;
        *value = o = v;
        for (; *v != q; v++) {
            if (*v == '\0') {
                cfg_err(msg, msgsz, "unterminated %s quote", q == '"' ? "double" : "single");
                return -1;
            }
            if (q == '"' && *v == '\\') {
                v++;
                switch (*v) {
                case 'n':
                    *o++ = '\n';
                    continue;
                case 't':
                    *o++ = '\t';
                    continue;
                case '"':
                case '\\':
                    *o++ = *v;
                    continue;
                default:
                    cfg_err(msg, msgsz, "unknown escape in quoted value");
                    return -1;
                }
            }
            *o++ = *v;
        }
        *o = '\0';
        v++;
        while (*v == ' ' || *v == '\t')
            v++;
        if (*v != '\0' && *v != '#') {
            cfg_err(msg, msgsz, "unexpected text after the quoted value");
            return -1;
        }
        return 0;
    }
    *value = v;
    for (o = v; *o != '\0'; o++) {
        if (*o == '#' && (o == v || o[-1] == ' ' || o[-1] == '\t')) {
            *o = '\0';
            break;
        }
    }
    *value = cfg_trim(v);
    return 0;
}

static int load_file(struct config *cfg, const char *path, const char *via, char *errstr,
                     size_t errsz)
{
    FILE *f = fopen(path, "r");
    char *line = NULL, *key, *value, msg[256], where[512];
    size_t cap = 0;
    ssize_t len;
    int lineno = 0, rc = -1, r;

    if (!f) {
        cfg_err(errstr, errsz, "config file %s: %s (from %s)", path, strerror(errno), via);
        return -1;
    }
    while ((len = getline(&line, &cap, f)) != -1) {
        lineno++;
        if (len > CONFIG_MAX_LINE) {
            cfg_err(errstr, errsz, "%s:%d: line longer than %d bytes", path, lineno,
                    CONFIG_MAX_LINE);
            goto out;
        }
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        key = cfg_trim(line);
        if (*key == '\0' || *key == '#')
            continue;
        if (parse_line(key, &key, &value, msg, sizeof(msg)) < 0) {
            cfg_err(errstr, errsz, "%s:%d: %s", path, lineno, msg);
            goto out;
        }
        ssize_t i = cfg_find_key(cfg, key);
        struct kprop *k = strncmp(key, "kafka.", 6) == 0 ? cfg_kprop_find(cfg, key + 6) : NULL;
        int first = i >= 0 && cfg->vals[i].src == CONFIG_SRC_FILE ? cfg->vals[i].line
                    : k && k->src == CONFIG_SRC_FILE              ? k->line
                                                                  : 0;
        if (first > 0) {
            cfg_err(errstr, errsz, "%s:%d: duplicate key \"%s\" (first set at line %d)", path,
                    lineno, key, first);
            goto out;
        }
        snprintf(where, sizeof(where), "%s:%d", path, lineno);
        r = cfg_set_key(cfg, key, value, &(struct cfg_origin){CONFIG_SRC_FILE, where, lineno},
                        errstr, errsz);
        if (r == -2) {
            snprintf(where, sizeof(where), "%s:%d: ", path, lineno);
            unknown_key(cfg, where, key, 0, errstr, errsz);
        }
        if (r < 0)
            goto out;
    }
    if (ferror(f)) {
        cfg_err(errstr, errsz, "config file %s: read error", path);
        goto out;
    }
    rc = 0;
out:
    free(line);
    fclose(f);
    return rc;
}

/* ---- the environment ------------------------------------------------------------------ */

/* Reads a secret from a file named by an env var; trailing CR/LF stripped. */
static int read_secret_file(const char *key, const char *path, const char *var, char **out,
                            char *errstr, size_t errsz)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n;
    int rc = -1;

    if (!f) {
        cfg_err(errstr, errsz, "%s: cannot read %s: %s (from env %s)", key, path, strerror(errno),
                var);
        return -1;
    }
    buf = cfg_xcalloc(CONFIG_MAX_SECRET_FILE + 2, 1);
    n = fread(buf, 1, CONFIG_MAX_SECRET_FILE + 1, f);
    if (ferror(f)) {
        cfg_err(errstr, errsz, "%s: cannot read %s (from env %s)", key, path, var);
        goto out;
    }
    if (n > CONFIG_MAX_SECRET_FILE || memchr(buf, '\0', n)) {
        cfg_err(errstr, errsz,
                "%s: %s is not a secret file (over %d bytes or binary) "
                "(from env %s)",
                key, path, CONFIG_MAX_SECRET_FILE, var);
        goto out;
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    *out = buf;
    buf = NULL;
    rc = 0;
out:
    free(buf);
    fclose(f);
    return rc;
}

/* Sets a key from env var `var` or, for secrets, from `var`_FILE. */
static int env_pair(struct config *cfg, char *const *envp, const char *key, const char *var,
                    int secret, char *errstr, size_t errsz)
{
    char *fvar = cfg_xasprintf("%s_FILE", var), *content = NULL, *where = NULL;
    const char *plain = envlookup(envp, var);
    const char *file = secret ? envlookup(envp, fvar) : NULL;
    int rc = -1;

    if (plain && file) {
        cfg_err(errstr, errsz, "%s: both %s and %s are set; use one", key, var, fvar);
        goto out;
    }
    if (file) {
        if (read_secret_file(key, file, fvar, &content, errstr, errsz) < 0)
            goto out;
        where = cfg_xasprintf("env %s", fvar);
    } else if (plain) {
        where = cfg_xasprintf("env %s", var);
    } else {
        rc = 0;
        goto out;
    }
    rc = cfg_set_key(cfg, key, content ? content : plain,
                     &(struct cfg_origin){CONFIG_SRC_ENV, where, 0}, errstr, errsz);
out:
    free(fvar);
    free(content);
    free(where);
    return rc;
}

/* "SECURITY_PROTOCOL" -> "security.protocol", "LOG__LEVEL" -> "log_level". */
static char *env_to_prop(const char *rest, size_t len)
{
    char *p = cfg_xcalloc(len + 1, 1), *o = p;
    size_t i;

    for (i = 0; i < len; i++) {
        if (rest[i] == '_' && i + 1 < len && rest[i + 1] == '_') {
            *o++ = '_';
            i++;
        } else {
            *o++ = rest[i] == '_' ? '.' : (char)tolower((unsigned char)rest[i]);
        }
    }
    return p;
}

static void ignore_env(struct config *cfg, const char *name, size_t len)
{
    cfg->ignored = realloc(cfg->ignored, (cfg->nignored + 2) * sizeof(char *));
    if (!cfg->ignored)
        abort();
    cfg->ignored[cfg->nignored] = cfg_xcalloc(len + 1, 1);
    memcpy(cfg->ignored[cfg->nignored++], name, len);
    cfg->ignored[cfg->nignored] = NULL;
}

static int is_table_env(const struct config *cfg, const char *name, size_t len)
{
    size_t i, n;

    for (i = 0; i < cfg->ndefs; i++) {
        n = strlen(cfg->env_names[i]);
        if (strncmp(name, cfg->env_names[i], n) != 0)
            continue;
        if (len == n || ((cfg->defs[i].flags & CONFIG_SECRET) && len == n + 5 &&
                         strncmp(name + n, "_FILE", 5) == 0))
            return 1;
    }
    return 0;
}

/* One HSQB_KAFKA__* variable (name e, length len; the marker is kplen bytes long). A
 * secret property's *_FILE form is recognised here; env_pair() then reads whichever of
 * the two forms is set and rejects both. */
static int load_env_kafka(struct config *cfg, char *const *envp, const char *e, size_t len,
                          size_t kplen, char *errstr, size_t errsz)
{
    char *prop = NULL, *key = NULL, *var = NULL;
    size_t rlen = len - kplen;
    int rc = -1;

    if (rlen > 5 && strncmp(e + len - 5, "_FILE", 5) == 0) {
        prop = env_to_prop(e + kplen, rlen - 5);
        if (config_kafka_is_secret(prop)) {
            len -= 5;
        } else {
            free(prop);
            prop = NULL;
        }
    }
    if (!prop)
        prop = env_to_prop(e + kplen, rlen);
    if (!cfg_prop_name_ok(prop)) {
        cfg_err(errstr, errsz, "env %.*s: no librdkafka property name after %.*s", (int)len, e,
                (int)kplen, e);
        goto out;
    }
    key = cfg_xasprintf("kafka.%s", prop);
    var = cfg_xasprintf("%.*s", (int)len, e);
    if (cfg_find_key(cfg, key) >= 0) {
        cfg_err(errstr, errsz, "env %s: %s is a setting; use %s", var, key,
                cfg->env_names[cfg_find_key(cfg, key)]);
        goto out;
    }
    rc = env_pair(cfg, envp, key, var, config_kafka_is_secret(prop), errstr, errsz);
out:
    free(prop);
    free(key);
    free(var);
    return rc;
}

static int load_env(struct config *cfg, char *const *envp, char *errstr, size_t errsz)
{
    char *kpre = cfg_xasprintf("%sKAFKA__", cfg->prefix),
         *cvar = cfg_xasprintf("%sCONFIG", cfg->prefix);
    size_t i, plen = strlen(cfg->prefix), kplen = strlen(kpre);
    char *const *ep;
    int rc = -1;

    for (i = 0; i < cfg->ndefs; i++)
        if (env_pair(cfg, envp, cfg->defs[i].name, cfg->env_names[i],
                     (cfg->defs[i].flags & CONFIG_SECRET) != 0, errstr, errsz) < 0)
            goto out;
    for (ep = envp; ep && *ep; ep++) {
        const char *e = *ep, *eq = strchr(e, '=');
        size_t len = eq ? (size_t)(eq - e) : strlen(e);
        if (strncmp(e, cfg->prefix, plen) != 0 || is_table_env(cfg, e, len) ||
            (len == strlen(cvar) && strncmp(e, cvar, len) == 0))
            continue;
        if (len <= kplen || strncmp(e, kpre, kplen) != 0) {
            ignore_env(cfg, e, len);
            continue;
        }
        if (load_env_kafka(cfg, envp, e, len, kplen, errstr, errsz) < 0)
            goto out;
    }
    rc = 0;
out:
    free(kpre);
    free(cvar);
    return rc;
}

/* ---- flags and the whole load --------------------------------------------------------- */

/* Finds --config in argv. Returns 0 (path NULL when absent) or -1. */
static int find_config_flag(int argc, char **argv, const char **path, char *errstr, size_t errsz)
{
    int i;

    *path = NULL;
    for (i = 1; i < argc; i++) {
        const char *p = NULL;
        if (strncmp(argv[i], "--config=", 9) == 0)
            p = argv[i] + 9;
        else if (strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0) {
                cfg_err(errstr, errsz, "flag --config needs a file name");
                return -1;
            }
            p = argv[++i];
        }
        if (!p)
            continue;
        if (*path) {
            cfg_err(errstr, errsz, "flag --config given twice");
            return -1;
        }
        *path = p;
    }
    return 0;
}

/* A secret on the command line is readable by every user of the machine (ps,
 * /proc/<pid>/cmdline) and lands in shell histories: refused, naming the ways that are
 * not. Returns 1 (errstr filled) when `name` is a secret key or secret kafka.* property. */
static int secret_flag(const struct config *cfg, const char *name, char *errstr, size_t errsz)
{
    static const char rest[] = " or the config file (--config); `hsqb-worker credentials` "
                               "reads tokens from stdin";
    ssize_t i = cfg_find_key(cfg, name);

    if (i >= 0 && (cfg->defs[i].flags & CONFIG_SECRET)) {
        cfg_err(errstr, errsz,
                "flag --%s: a secret is not accepted on the command line, where ps shows it "
                "to every user; use %s_FILE=<file> or %s in the environment,%s",
                name, cfg->env_names[i], cfg->env_names[i], rest);
        return 1;
    }
    if (i < 0 && strncmp(name, "kafka.", 6) == 0 && config_kafka_is_secret(name + 6)) {
        cfg_err(errstr, errsz,
                "flag --%s: a secret is not accepted on the command line, where ps shows it "
                "to every user; use HSQB_KAFKA__<PROPERTY>_FILE=<file> in the environment "
                "(dots as _),%s",
                name, rest);
        return 1;
    }
    return 0;
}

static int load_flags(struct config *cfg, int argc, char **argv, char *errstr, size_t errsz)
{
    int i, r;

    for (i = 1; i < argc; i++) {
        char *name, *value, *eq, *where;
        if (strncmp(argv[i], "--", 2) != 0 || argv[i][2] == '\0') {
            cfg_err(errstr, errsz, "unexpected argument \"%s\" (settings are --key=value)",
                    argv[i]);
            return -1;
        }
        eq = strchr(argv[i], '=');
        if (eq) {
            name = cfg_xasprintf("%.*s", (int)(eq - argv[i] - 2), argv[i] + 2);
            value = eq + 1;
        } else {
            name = cfg_xstrdup(argv[i] + 2);
            if (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0) {
                cfg_err(errstr, errsz,
                        "flag --%s needs a value (use --%s=VALUE for values starting "
                        "with --)",
                        name, name);
                free(name);
                return -1;
            }
            value = argv[++i];
        }
        if (strcmp(name, "config") == 0) {
            free(name);
            continue;
        }
        if (secret_flag(cfg, name, errstr, errsz)) {
            free(name);
            return -1;
        }
        where = cfg_xasprintf("flag --%s", name);
        r = cfg_set_key(cfg, name, value, &(struct cfg_origin){CONFIG_SRC_FLAG, where, 0}, errstr,
                        errsz);
        if (r == -2)
            unknown_key(cfg, "", name, 1, errstr, errsz);
        free(where);
        free(name);
        if (r < 0)
            return -1;
    }
    return 0;
}

int config_load(struct config *cfg, int argc, char **argv, char *const *envp, char *errstr,
                size_t errsz)
{
    const char *path = NULL;
    char *cvar = NULL, *via = NULL;
    int rc = -1;

    if (cfg->loaded) {
        cfg_err(errstr, errsz, "config_load called twice");
        return -1;
    }
    cfg->loaded = 1;
    if (find_config_flag(argc, argv, &path, errstr, errsz) < 0)
        goto out;
    cvar = cfg_xasprintf("%sCONFIG", cfg->prefix);
    if (path) {
        via = cfg_xstrdup("flag --config");
    } else if ((path = envlookup(envp, cvar)) != NULL && *path != '\0') {
        via = cfg_xasprintf("env %s", cvar);
    } else {
        path = NULL;
    }
    if (path && load_file(cfg, path, via, errstr, errsz) < 0)
        goto out;
    if (load_env(cfg, envp, errstr, errsz) < 0)
        goto out;
    if (load_flags(cfg, argc, argv, errstr, errsz) < 0)
        goto out;
    rc = 0;
out:
    free(cvar);
    free(via);
    return rc;
}

char *const *config_environ(void)
{
    return environ;
}
