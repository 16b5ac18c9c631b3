/* config.c - the settings engine: parse, layer and validate values from a static table.
 *
 * Every value goes through one function, set_value(), whichever source it comes from;
 * it parses the text into a scratch struct cvalue and swaps it in only on success, so
 * a failed set leaves the previous layer's value and every message has one format.
 * Layering is simply the order of the loads (defaults at config_new, then file, env,
 * flags): a later set overwrites. Values are kept both typed (num/b/items) and as
 * canonical text, so dumps, help and error messages never re-derive formatting.
 *
 * The pass-through table for librdkafka is a separate, insertion-ordered array: the
 * engine cannot validate those names, librdkafka does at config_kafka_apply().
 *
 * The sources (file, environment, flags) are read in config_load.c; output (dump,
 * help, markdown) lives in config_doc.c and uses only the public API.
 */
#include "common/config.h"
#include "common/config_internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#define CONFIG_MAX_SHOWN 64 /* bytes of a bad value quoted in a message */

void cfg_err(char *errstr, size_t errsz, const char *fmt, ...)
{
    va_list ap;

    if (!errstr || errsz == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(errstr, errsz, fmt, ap);
    va_end(ap);
}

char *cfg_xstrdup(const char *s)
{
    char *p = strdup(s);

    if (!p) {
        fprintf(stderr, "config: out of memory\n");
        abort();
    }
    return p;
}

void *cfg_xcalloc(size_t n, size_t sz)
{
    void *p = calloc(n ? n : 1, sz);

    if (!p) {
        fprintf(stderr, "config: out of memory\n");
        abort();
    }
    return p;
}

char *cfg_xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0) {
        fprintf(stderr, "config: out of memory\n");
        abort();
    }
    return s;
}

static void cvalue_release(struct cvalue *v)
{
    size_t i;

    free(v->where);
    free(v->text);
    for (i = 0; i < v->nitems; i++)
        free(v->items[i]);
    free(v->items);
    memset(v, 0, sizeof(*v));
}

/* ---- parsers ------------------------------------------------------------------------ */

int config_parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    size_t i;

    for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

static int parse_int64(const char *s, int64_t *out)
{
    char *end;
    long long v;

    if (!(isdigit((unsigned char)s[0]) ||
          ((s[0] == '-' || s[0] == '+') && isdigit((unsigned char)s[1]))))
        return -1;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

/* Reads the digits at *p into *n without overflow; advances *p. */
static int take_digits(const char **p, int64_t *n)
{
    int64_t v = 0;

    if (!isdigit((unsigned char)**p))
        return -1;
    while (isdigit((unsigned char)**p)) {
        int d = **p - '0';
        if (v > (INT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
        (*p)++;
    }
    *n = v;
    return 0;
}

int config_parse_duration(const char *s, int64_t *ms)
{
    static const struct {
        const char *unit;
        int64_t mult;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    const char *p = s;
    int64_t total = 0, n;
    size_t i;

    if (take_digits(&p, &n) == 0 && *p == '\0') {
        *ms = n;
        return 0;
    }
    p = s;
    if (*p == '\0')
        return -1;
    while (*p != '\0') {
        if (take_digits(&p, &n) < 0)
            return -1;
        for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            size_t ul = strlen(units[i].unit);
            if (strncmp(p, units[i].unit, ul) == 0 && !islower((unsigned char)p[ul]))
                break;
        }
        if (i == sizeof(units) / sizeof(units[0]))
            return -1;
        p += strlen(units[i].unit);
        if (n > INT64_MAX / units[i].mult || total > INT64_MAX - n * units[i].mult)
            return -1;
        total += n * units[i].mult;
    }
    *ms = total;
    return 0;
}

int config_parse_size(const char *s, int64_t *bytes)
{
    static const struct {
        const char *unit;
        int64_t mult;
    } units[] = {{"", 1},
                 {"b", 1},
                 {"kib", 1LL << 10},
                 {"mib", 1LL << 20},
                 {"gib", 1LL << 30},
                 {"tib", 1LL << 40},
                 {"kb", 1000LL},
                 {"mb", 1000000LL},
                 {"gb", 1000000000LL},
                 {"tb", 1000000000000LL}};
    const char *p = s;
    int64_t n;
    size_t i;

    if (take_digits(&p, &n) < 0)
        return -1;
    while (*p == ' ')
        p++;
    for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcasecmp(p, units[i].unit) == 0) {
            if (n > INT64_MAX / units[i].mult)
                return -1;
            *bytes = n * units[i].mult;
            return 0;
        }
    }
    return -1;
}

void config_format_duration(int64_t ms, char *buf, size_t bufsz)
{
    static const struct {
        const char *unit;
        int64_t mult;
    } units[] = {{"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}};
    size_t i;

    if (ms == 0) {
        snprintf(buf, bufsz, "0s");
        return;
    }
    for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (ms % units[i].mult == 0) {
            snprintf(buf, bufsz, "%lld%s", (long long)(ms / units[i].mult), units[i].unit);
            return;
        }
    }
    snprintf(buf, bufsz, "%lldms", (long long)ms);
}

void config_format_size(int64_t bytes, char *buf, size_t bufsz)
{
    static const char *const units[] = {"TiB", "GiB", "MiB", "KiB"};
    int shift = 40;
    size_t i;

    for (i = 0; bytes != 0 && i < 4; i++, shift -= 10) {
        if (bytes % (1LL << shift) == 0) {
            snprintf(buf, bufsz, "%lld%s", (long long)(bytes >> shift), units[i]);
            return;
        }
    }
    snprintf(buf, bufsz, "%lldB", (long long)bytes);
}

static void format_num(const struct config_def *d, int64_t v, char *buf, size_t bufsz)
{
    if (d->type == CONFIG_DURATION)
        config_format_duration(v, buf, bufsz);
    else if (d->type == CONFIG_SIZE)
        config_format_size(v, buf, bufsz);
    else
        snprintf(buf, bufsz, "%lld", (long long)v);
}

/* ---- setting one value ---------------------------------------------------------------- */

/* A bad value as it may appear in a message: "***" for secrets, else quoted, with
 * control bytes replaced and long values cut. */
static void shown_value(const struct config_def *d, const char *raw, char *buf, size_t bufsz)
{
    size_t i, o = 0;

    if (d && (d->flags & CONFIG_SECRET)) {
        snprintf(buf, bufsz, "***");
        return;
    }
    buf[o++] = '"';
    for (i = 0; raw[i] != '\0' && o + 5 < bufsz; i++) {
        if (i == CONFIG_MAX_SHOWN) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        buf[o++] = (unsigned char)raw[i] < 0x20 || raw[i] == 0x7f ? '?' : raw[i];
    }
    buf[o++] = '"';
    buf[o] = '\0';
}

char *cfg_trim(char *s)
{
    char *e;

    while (*s == ' ' || *s == '\t')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        *--e = '\0';
    return s;
}

/* Splits a comma-separated list; `bad` is the value as messages may show it. */
static int parse_list(const struct config_def *d, const char *raw, const char *bad,
                      struct cvalue *v, const char *from, char *errstr, size_t errsz)
{
    char *copy = cfg_xstrdup(raw), *p = copy, *comma, *item;
    size_t cap = 4, len = 0, i;
    int rc = -1;

    v->items = cfg_xcalloc(cap + 1, sizeof(char *));
    if (*cfg_trim(copy) != '\0') {
        for (;;) {
            comma = strchr(p, ',');
            if (comma)
                *comma = '\0';
            item = cfg_trim(p);
            if (*item == '\0') {
                cfg_err(errstr, errsz, "%s: empty item in list %s%s", d->name, bad, from);
                goto out;
            }
            if (v->nitems == cap) {
                cap *= 2;
                v->items = realloc(v->items, (cap + 1) * sizeof(char *));
                if (!v->items)
                    abort();
            }
            v->items[v->nitems++] = cfg_xstrdup(item);
            v->items[v->nitems] = NULL;
            if (!comma)
                break;
            p = comma + 1;
        }
    }
    for (i = 0; i < v->nitems; i++)
        len += strlen(v->items[i]) + 1;
    v->text = cfg_xcalloc(len + 1, 1);
    size_t off = 0;
    for (i = 0; i < v->nitems; i++) {
        size_t n = strlen(v->items[i]);
        if (i > 0)
            v->text[off++] = ',';
        memcpy(v->text + off, v->items[i], n);
        off += n;
    }
    v->text[off] = '\0';
    rc = 0;
out:
    free(copy);
    return rc;
}

static int set_value(const struct config_def *d, struct cvalue *dst, const char *raw,
                     const struct cfg_origin *o, char *errstr, size_t errsz)
{
    enum config_src src = o->src;
    const char *where = o->where;
    int line = o->line;
    struct cvalue v = {0};
    char from[512], bad[CONFIG_MAX_SHOWN + 8], lo[32], hi[32], txt[32];
    size_t i;

    snprintf(from, sizeof(from), " (from %s)", where);
    shown_value(d, raw, bad, sizeof(bad));
    switch (d->type) {
    case CONFIG_STRING:
        if (d->max > 0 && !(raw[0] == '\0' && !d->default_value) &&
            ((int64_t)strlen(raw) < d->min || (int64_t)strlen(raw) > d->max)) {
            cfg_err(errstr, errsz, "%s: length %zu out of range [%lld, %lld]%s", d->name,
                    strlen(raw), (long long)d->min, (long long)d->max, from);
            goto fail;
        }
        v.text = cfg_xstrdup(raw);
        break;
    case CONFIG_BOOL:
        if (config_parse_bool(raw, &v.b) < 0) {
            cfg_err(errstr, errsz, "%s: %s is not a boolean (use true/false)%s", d->name, bad,
                    from);
            goto fail;
        }
        v.text = cfg_xstrdup(v.b ? "true" : "false");
        break;
    case CONFIG_INT:
    case CONFIG_DURATION:
    case CONFIG_SIZE: {
        int rc = d->type == CONFIG_INT        ? parse_int64(raw, &v.num)
                 : d->type == CONFIG_DURATION ? config_parse_duration(raw, &v.num)
                                              : config_parse_size(raw, &v.num);
        if (rc < 0) {
            cfg_err(errstr, errsz, "%s: %s is not %s%s", d->name, bad,
                    d->type == CONFIG_INT        ? "an integer"
                    : d->type == CONFIG_DURATION ? "a duration (use e.g. 250ms, 30s, 5m, 1h, 7d)"
                                                 : "a size (use e.g. 65536, 64KiB, 1MiB)",
                    from);
            goto fail;
        }
        format_num(d, v.num, txt, sizeof(txt));
        if (v.num < d->min || v.num > d->max) {
            format_num(d, d->min, lo, sizeof(lo));
            format_num(d, d->max, hi, sizeof(hi));
            cfg_err(errstr, errsz, "%s: value %s out of range [%s, %s]%s", d->name,
                    (d->flags & CONFIG_SECRET) ? "***" : txt, lo, hi, from);
            goto fail;
        }
        v.text = cfg_xstrdup(txt);
        break;
    }
    case CONFIG_ENUM:
        for (i = 0; d->choices[i]; i++)
            if (strcasecmp(raw, d->choices[i]) == 0)
                break;
        if (!d->choices[i]) {
            char list[256] = "";
            for (i = 0; d->choices[i]; i++) {
                if (i > 0)
                    strncat(list, ", ", sizeof(list) - strlen(list) - 1);
                strncat(list, d->choices[i], sizeof(list) - strlen(list) - 1);
            }
            cfg_err(errstr, errsz, "%s: %s is not one of: %s%s", d->name, bad, list, from);
            goto fail;
        }
        v.text = cfg_xstrdup(d->choices[i]);
        break;
    case CONFIG_LIST:
        if (parse_list(d, raw, bad, &v, from, errstr, errsz) < 0)
            goto fail;
        if (d->max > 0 && ((int64_t)v.nitems < d->min || (int64_t)v.nitems > d->max)) {
            cfg_err(errstr, errsz, "%s: %zu items, allowed [%lld, %lld]%s", d->name, v.nitems,
                    (long long)d->min, (long long)d->max, from);
            goto fail;
        }
        break;
    }
    v.src = src;
    v.line = line;
    v.where = cfg_xstrdup(where);
    cvalue_release(dst);
    *dst = v;
    return 0;
fail:
    cvalue_release(&v);
    return -1;
}

/* ---- lookup --------------------------------------------------------------------------- */

ssize_t cfg_find_key(const struct config *cfg, const char *key)
{
    size_t i;

    for (i = 0; i < cfg->ndefs; i++)
        if (strcmp(cfg->defs[i].name, key) == 0)
            return (ssize_t)i;
    return -1;
}

int config_kafka_is_secret(const char *prop)
{
    size_t n = strlen(prop);

    return strstr(prop, "password") != NULL || strstr(prop, "secret") != NULL ||
           (n >= 7 && strcmp(prop + n - 7, "key.pem") == 0) ||
           strcmp(prop, "sasl.oauthbearer.config") == 0;
}

/* librdkafka names: lower-case dotted words, with '_' in a few. */
int cfg_prop_name_ok(const char *p)
{
    size_t i;

    if (p[0] == '\0' || p[0] == '.' || p[strlen(p) - 1] == '.' || strstr(p, ".."))
        return 0;
    for (i = 0; p[i] != '\0'; i++)
        if (!(islower((unsigned char)p[i]) || isdigit((unsigned char)p[i]) || p[i] == '.' ||
              p[i] == '_'))
            return 0;
    return 1;
}

struct kprop *cfg_kprop_find(const struct config *cfg, const char *prop)
{
    size_t i;

    for (i = 0; i < cfg->nkp; i++)
        if (strcmp(cfg->kp[i].name, prop) == 0)
            return &cfg->kp[i];
    return NULL;
}

void cfg_kprop_set(struct config *cfg, const char *prop, const char *value,
                   const struct cfg_origin *o)
{
    enum config_src src = o->src;
    const char *where = o->where;
    int line = o->line;
    struct kprop *k = cfg_kprop_find(cfg, prop);

    if (!k) {
        if (cfg->nkp == cfg->capkp) {
            cfg->capkp = cfg->capkp ? cfg->capkp * 2 : 8;
            cfg->kp = realloc(cfg->kp, cfg->capkp * sizeof(*cfg->kp));
            if (!cfg->kp)
                abort();
        }
        k = &cfg->kp[cfg->nkp++];
        k->name = cfg_xstrdup(prop);
    } else {
        free(k->value);
        free(k->where);
    }
    k->value = cfg_xstrdup(value);
    k->where = cfg_xstrdup(where);
    k->src = src;
    k->line = line;
}

int cfg_set_key(struct config *cfg, const char *key, const char *value, const struct cfg_origin *o,
                char *errstr, size_t errsz)
{
    ssize_t i = cfg_find_key(cfg, key);

    if (i >= 0)
        return set_value(&cfg->defs[i], &cfg->vals[i], value, o, errstr, errsz);
    if (strncmp(key, "kafka.", 6) == 0 && cfg_prop_name_ok(key + 6)) {
        cfg_kprop_set(cfg, key + 6, value, o);
        return 0;
    }
    return -2;
}

/* ---- construction --------------------------------------------------------------------- */

static int key_name_ok(const char *name)
{
    const char *p = name;

    /* Dot-separated words of [a-z0-9] joined by single underscores: keeps the env
     * mapping one-to-one and clear of the KAFKA__ pass-through marker. */
    for (;;) {
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p)))
            return 0;
        while (islower((unsigned char)*p) || isdigit((unsigned char)*p) ||
               (*p == '_' && (islower((unsigned char)p[1]) || isdigit((unsigned char)p[1]))))
            p++;
        if (*p == '\0')
            return 1;
        if (*p != '.')
            return 0;
        p++;
    }
}

static char *env_name_for(const char *prefix, const char *key)
{
    char *s = cfg_xasprintf("%s%s", prefix, key);
    char *p;

    for (p = s + strlen(prefix); *p != '\0'; p++)
        *p = *p == '.' ? '_' : (char)toupper((unsigned char)*p);
    return s;
}

static int check_def(const struct config *cfg, size_t i, char *errstr, size_t errsz)
{
    const struct config_def *d = &cfg->defs[i];
    size_t j;

    if (!d->name || !key_name_ok(d->name) || strcmp(d->name, "config") == 0) {
        cfg_err(errstr, errsz, "config table: bad key name \"%s\"", d->name ? d->name : "(null)");
        return -1;
    }
    if (!d->help || d->type > CONFIG_LIST) {
        cfg_err(errstr, errsz, "config table: %s: missing help or bad type", d->name);
        return -1;
    }
    if ((d->type == CONFIG_ENUM) != (d->choices != NULL) || (d->choices && !d->choices[0])) {
        cfg_err(errstr, errsz, "config table: %s: choices are for enums only", d->name);
        return -1;
    }
    if (!d->default_value && d->type != CONFIG_STRING && d->type != CONFIG_LIST) {
        cfg_err(errstr, errsz, "config table: %s: needs a default", d->name);
        return -1;
    }
    if ((d->flags & CONFIG_REQUIRED) &&
        (d->default_value || (d->type != CONFIG_STRING && d->type != CONFIG_LIST))) {
        cfg_err(errstr, errsz, "config table: %s: required keys are defaultless strings", d->name);
        return -1;
    }
    if (d->min > d->max || (d->type != CONFIG_INT && d->min < 0)) {
        cfg_err(errstr, errsz, "config table: %s: bad bounds", d->name);
        return -1;
    }
    for (j = 0; j < i; j++) {
        if (strcmp(cfg->env_names[j], cfg->env_names[i]) == 0) {
            cfg_err(errstr, errsz, "config table: %s and %s share env %s", cfg->defs[j].name,
                    d->name, cfg->env_names[i]);
            return -1;
        }
    }
    return 0;
}

struct config *config_new(const struct config_def *defs, size_t ndefs, const char *env_prefix,
                          char *errstr, size_t errsz)
{
    static const struct cfg_origin def_origin = {CONFIG_SRC_DEFAULT, "default", 0};
    struct config *cfg = cfg_xcalloc(1, sizeof(*cfg));
    size_t i, j;

    cfg->defs = defs;
    cfg->ndefs = ndefs;
    cfg->prefix = cfg_xstrdup(env_prefix);
    cfg->env_names = cfg_xcalloc(ndefs, sizeof(char *));
    cfg->vals = cfg_xcalloc(ndefs, sizeof(struct cvalue));
    cfg->ignored = cfg_xcalloc(1, sizeof(char *));
    for (i = 0; i < ndefs; i++) {
        cfg->env_names[i] = env_name_for(env_prefix, defs[i].name ? defs[i].name : "");
        if (check_def(cfg, i, errstr, errsz) < 0)
            goto fail;
        if (set_value(&defs[i], &cfg->vals[i], defs[i].default_value ? defs[i].default_value : "",
                      &def_origin, errstr, errsz) < 0)
            goto fail;
    }
    for (i = 0; i < ndefs; i++) {
        if (!(defs[i].flags & CONFIG_SECRET))
            continue;
        for (j = 0; j < ndefs; j++) {
            size_t n = strlen(cfg->env_names[i]);
            if (strncmp(cfg->env_names[j], cfg->env_names[i], n) == 0 &&
                strcmp(cfg->env_names[j] + n, "_FILE") == 0) {
                cfg_err(errstr, errsz, "config table: %s collides with %s_FILE", defs[j].name,
                        cfg->env_names[i]);
                goto fail;
            }
        }
    }
    return cfg;
fail:
    config_free(cfg);
    return NULL;
}

void config_free(struct config *cfg)
{
    size_t i;

    if (!cfg)
        return;
    for (i = 0; i < cfg->ndefs; i++) {
        free(cfg->env_names[i]);
        cvalue_release(&cfg->vals[i]);
    }
    for (i = 0; i < cfg->nkp; i++) {
        free(cfg->kp[i].name);
        free(cfg->kp[i].value);
        free(cfg->kp[i].where);
    }
    for (i = 0; i < cfg->nignored; i++)
        free(cfg->ignored[i]);
    free(cfg->ignored);
    free(cfg->kp);
    free(cfg->vals);
    free(cfg->env_names);
    free(cfg->prefix);
    free(cfg);
}

int config_check_required(const struct config *cfg, char *errstr, size_t errsz)
{
    size_t i;

    for (i = 0; i < cfg->ndefs; i++) {
        if (!(cfg->defs[i].flags & CONFIG_REQUIRED) || cfg->vals[i].text[0] != '\0')
            continue;
        cfg_err(errstr, errsz,
                "%s: required but not set (set %s in the config file, env %s, or flag --%s)",
                cfg->defs[i].name, cfg->defs[i].name, cfg->env_names[i], cfg->defs[i].name);
        return -1;
    }
    return 0;
}

/* ---- typed access --------------------------------------------------------------------- */

static const struct cvalue *must_get(const struct config *cfg, const char *key, enum config_type t1,
                                     enum config_type t2)
{
    ssize_t i = cfg_find_key(cfg, key);

    if (i < 0) {
        fprintf(stderr, "config: unknown key \"%s\" (programming error)\n", key);
        abort();
    }
    if (cfg->defs[i].type != t1 && cfg->defs[i].type != t2) {
        fprintf(stderr, "config: key \"%s\" read with the wrong type (programming error)\n", key);
        abort();
    }
    return &cfg->vals[i];
}

const char *config_get_str(const struct config *cfg, const char *key)
{
    return must_get(cfg, key, CONFIG_STRING, CONFIG_ENUM)->text;
}

int64_t config_get_int(const struct config *cfg, const char *key)
{
    return must_get(cfg, key, CONFIG_INT, CONFIG_INT)->num;
}

int config_get_bool(const struct config *cfg, const char *key)
{
    return must_get(cfg, key, CONFIG_BOOL, CONFIG_BOOL)->b;
}

int64_t config_get_ms(const struct config *cfg, const char *key)
{
    return must_get(cfg, key, CONFIG_DURATION, CONFIG_DURATION)->num;
}

int64_t config_get_bytes(const struct config *cfg, const char *key)
{
    return must_get(cfg, key, CONFIG_SIZE, CONFIG_SIZE)->num;
}

const char *const *config_get_list(const struct config *cfg, const char *key, size_t *n)
{
    const struct cvalue *v = must_get(cfg, key, CONFIG_LIST, CONFIG_LIST);

    if (n)
        *n = v->nitems;
    return (const char *const *)v->items;
}

static const struct cvalue *any_value(const struct config *cfg, const char *key, ssize_t *idx)
{
    ssize_t i = cfg_find_key(cfg, key);

    if (i < 0) {
        fprintf(stderr, "config: unknown key \"%s\" (programming error)\n", key);
        abort();
    }
    if (idx)
        *idx = i;
    return &cfg->vals[i];
}

int config_is_set(const struct config *cfg, const char *key)
{
    return any_value(cfg, key, NULL)->src != CONFIG_SRC_DEFAULT;
}

const char *config_where(const struct config *cfg, const char *key)
{
    return any_value(cfg, key, NULL)->where;
}

const char *config_shown(const struct config *cfg, const char *key)
{
    ssize_t i;
    const struct cvalue *v = any_value(cfg, key, &i);

    /* A default is in the public table; anything else set for a secret is hidden. */
    if ((cfg->defs[i].flags & CONFIG_SECRET) && v->src != CONFIG_SRC_DEFAULT && v->text[0] != '\0')
        return "***";
    return v->text;
}

const struct config_def *config_defs(const struct config *cfg, size_t *ndefs)
{
    if (ndefs)
        *ndefs = cfg->ndefs;
    return cfg->defs;
}

const char *config_env_name(const struct config *cfg, const char *key)
{
    ssize_t i = cfg_find_key(cfg, key);

    return i < 0 ? NULL : cfg->env_names[i];
}

const char *config_env_prefix(const struct config *cfg)
{
    return cfg->prefix;
}

const char *const *config_ignored_env(const struct config *cfg, size_t *n)
{
    if (n)
        *n = cfg->nignored;
    return (const char *const *)cfg->ignored;
}

/* ---- librdkafka pass-through ---------------------------------------------------------- */

const char *config_kafka_get(const struct config *cfg, const char *prop)
{
    const struct kprop *k = cfg_kprop_find(cfg, prop);

    return k ? k->value : NULL;
}

const char *config_kafka_where(const struct config *cfg, const char *prop)
{
    const struct kprop *k = cfg_kprop_find(cfg, prop);

    return k ? k->where : NULL;
}

size_t config_kafka_count(const struct config *cfg)
{
    return cfg->nkp;
}

int config_kafka_at(const struct config *cfg, size_t i, const char **prop, const char **value,
                    const char **where)
{
    if (i >= cfg->nkp)
        return -1;
    if (prop)
        *prop = cfg->kp[i].name;
    if (value)
        *value = cfg->kp[i].value;
    if (where)
        *where = cfg->kp[i].where;
    return 0;
}

/* Copies src to dst replacing every occurrence of `secret` with ***. */
static void scrub(const char *src, const char *secret, char *dst, size_t dstsz)
{
    size_t sl = strlen(secret), o = 0;

    while (*src != '\0' && o + 1 < dstsz) {
        if (sl > 0 && strncmp(src, secret, sl) == 0) {
            o += (size_t)snprintf(dst + o, dstsz - o, "***");
            if (o >= dstsz) {
                o = dstsz - 1;
                break;
            }
            src += sl;
        } else {
            dst[o++] = *src++;
        }
    }
    dst[o] = '\0';
}

int config_kafka_apply(const struct config *cfg, rd_kafka_conf_t *conf, char *errstr, size_t errsz)
{
    char kerr[512], clean[512];
    size_t i;

    for (i = 0; i < cfg->nkp; i++) {
        const struct kprop *k = &cfg->kp[i];
        kerr[0] = '\0';
        if (rd_kafka_conf_set(conf, k->name, k->value, kerr, sizeof(kerr)) == RD_KAFKA_CONF_OK)
            continue;
        scrub(kerr, config_kafka_is_secret(k->name) ? k->value : "", clean, sizeof(clean));
        cfg_err(errstr, errsz, "kafka.%s: %s (from %s)", k->name, clean, k->where);
        return -1;
    }
    return 0;
}
