/* config_doc.c - everything the engine prints: the dump, --help and the Markdown table.
 *
 * All three are generated from the table so they cannot drift from what the loader
 * accepts; they use only the public API of config.h. The dump is itself a valid config
 * file (values quoted when needed), except that secrets read back as the text "***".
 */
#include "common/config.h"

#include <string.h>

#define HELP_WIDTH  80 /* wrap --help text at this column */
#define HELP_INDENT 6  /* indent of a key's description */

static const char *type_name(enum config_type t)
{
    switch (t) {
    case CONFIG_STRING:
        return "string";
    case CONFIG_INT:
        return "int";
    case CONFIG_BOOL:
        return "bool";
    case CONFIG_DURATION:
        return "duration";
    case CONFIG_SIZE:
        return "size";
    case CONFIG_ENUM:
        return "enum";
    case CONFIG_LIST:
        return "list";
    }
    return "?";
}

static void format_bound(const struct config_def *d, int64_t v, char *buf, size_t bufsz)
{
    if (d->type == CONFIG_DURATION)
        config_format_duration(v, buf, bufsz);
    else if (d->type == CONFIG_SIZE)
        config_format_size(v, buf, bufsz);
    else
        snprintf(buf, bufsz, "%lld", (long long)v);
}

/* "[1, 256]", "length [1, 249]", "[1, 10] items", "a, b, c" (markdown: `a`, `b`), or "". */
static void allowed(const struct config_def *d, int md, char *buf, size_t bufsz)
{
    char lo[32], hi[32];
    size_t i;

    buf[0] = '\0';
    if (d->type == CONFIG_ENUM) {
        for (i = 0; d->choices[i]; i++) {
            size_t o = strlen(buf);
            snprintf(buf + o, bufsz - o, "%s%s%s%s", i ? (md ? ", " : "|") : "", md ? "`" : "",
                     d->choices[i], md ? "`" : "");
        }
        return;
    }
    if (d->type == CONFIG_BOOL ||
        ((d->type == CONFIG_STRING || d->type == CONFIG_LIST) && d->max <= 0))
        return;
    format_bound(d, d->min, lo, sizeof(lo));
    format_bound(d, d->max, hi, sizeof(hi));
    snprintf(buf, bufsz, "%s[%s, %s]%s", d->type == CONFIG_STRING ? "length " : "", lo, hi,
             d->type == CONFIG_LIST ? " items" : "");
}

/* ---- dump ----------------------------------------------------------------------------- */

static void put_value(FILE *out, const char *v)
{
    const char *p;
    int quote = v[0] == '\0' || v[0] == ' ' || v[0] == '\t' || v[strlen(v) - 1] == ' ' ||
                v[strlen(v) - 1] == '\t' || strpbrk(v, "#\"'\\") != NULL;

    for (p = v; !quote && *p != '\0'; p++)
        quote = (unsigned char)*p < 0x20;
    if (!quote) {
        fputs(v, out);
        return;
    }
    fputc('"', out);
    for (p = v; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", out);
        else if (*p == '\t')
            fputs("\\t", out);
        else
            fputc((unsigned char)*p < 0x20 ? '?' : *p, out);
    }
    fputc('"', out);
}

void config_dump(const struct config *cfg, FILE *out)
{
    size_t n, i;
    const struct config_def *defs = config_defs(cfg, &n);
    const char *const *ignored;
    const char *prop, *value, *where;

    for (i = 0; i < n; i++) {
        fprintf(out, "%s = ", defs[i].name);
        put_value(out, config_shown(cfg, defs[i].name));
        fprintf(out, "  # %s\n", config_where(cfg, defs[i].name));
    }
    for (i = 0; config_kafka_at(cfg, i, &prop, &value, &where) == 0; i++) {
        fprintf(out, "kafka.%s = ", prop);
        put_value(out, config_kafka_is_secret(prop) && value[0] != '\0' ? "***" : value);
        fprintf(out, "  # %s\n", where);
    }
    ignored = config_ignored_env(cfg, &n);
    for (i = 0; i < n; i++)
        fprintf(out, "# ignored environment variable %s (no such setting)\n", ignored[i]);
}

/* ---- --help --------------------------------------------------------------------------- */

/* Prints text word-wrapped at HELP_WIDTH, each line indented by HELP_INDENT. */
static void wrap(FILE *out, const char *text)
{
    const char *p = text;
    int col = 0;

    while (*p != '\0') {
        size_t w = strcspn(p, " ");
        if (col > 0 && col + 1 + (int)w > HELP_WIDTH) {
            fputc('\n', out);
            col = 0;
        }
        if (col == 0)
            col = fprintf(out, "%*s", HELP_INDENT, "");
        else
            col += fprintf(out, " ");
        col += fprintf(out, "%.*s", (int)w, p);
        p += w;
        while (*p == ' ')
            p++;
    }
    fputc('\n', out);
}

void config_help(const struct config *cfg, FILE *out)
{
    size_t n, i, glen = 0;
    const struct config_def *defs = config_defs(cfg, &n);
    const char *group = NULL;
    const char *pre = config_env_prefix(cfg);
    char buf[1024], allow[512];

    fprintf(out, "Settings, lowest to highest precedence: defaults, the --config FILE (key = "
                 "value\nlines), environment variables, flags (--key=value or --key value).\n\n");
    fprintf(out, "  --config=FILE\n");
    wrap(out, "Read settings from FILE (key = value lines, # comments).");
    fprintf(out, "%*senv %sCONFIG\n", HELP_INDENT, "", pre);
    for (i = 0; i < n; i++) {
        const struct config_def *d = &defs[i];
        const char *env = config_env_name(cfg, d->name);
        size_t g = strcspn(d->name, ".");
        size_t o;
        if (!group || g != glen || strncmp(group, d->name, g) != 0) {
            fprintf(out, "\n%.*s\n", (int)g, d->name);
            group = d->name;
            glen = g;
        }
        allowed(d, 0, allow, sizeof(allow));
        fprintf(out, "  --%s=%s", d->name,
                d->type == CONFIG_ENUM       ? allow
                : d->type == CONFIG_STRING   ? "STRING"
                : d->type == CONFIG_LIST     ? "LIST"
                : d->type == CONFIG_INT      ? "INT"
                : d->type == CONFIG_BOOL     ? "BOOL"
                : d->type == CONFIG_DURATION ? "DURATION"
                                             : "SIZE");
        if (d->flags & CONFIG_REQUIRED)
            fprintf(out, "  (required)");
        else if (d->default_value && d->default_value[0] != '\0')
            fprintf(out, "  (default %s)", d->default_value);
        fputc('\n', out);
        o = (size_t)snprintf(buf, sizeof(buf), "%s", d->help);
        if (d->type != CONFIG_ENUM && allow[0] != '\0')
            o += (size_t)snprintf(buf + o, sizeof(buf) - o, " Allowed: %s.", allow);
        if (d->flags & CONFIG_SECRET)
            snprintf(buf + o, sizeof(buf) - o, " Secret: never printed.");
        wrap(out, buf);
        if (d->flags & CONFIG_SECRET)
            fprintf(out, "%*senv %s or %s_FILE\n", HELP_INDENT, "", env, env);
        else
            fprintf(out, "%*senv %s\n", HELP_INDENT, "", env);
    }
    fprintf(out, "\n  --kafka.<property>=VALUE\n");
    snprintf(buf, sizeof(buf),
             "Any other librdkafka property (see librdkafka's CONFIGURATION.md), passed "
             "through. env %sKAFKA__<PROPERTY> with '.' written as '_' and '_' as '__', "
             "e.g. %sKAFKA__SECURITY_PROTOCOL.",
             pre, pre);
    wrap(out, buf);
}

/* ---- markdown ------------------------------------------------------------------------- */

/* Prints s with '|' escaped for a Markdown table cell. */
static void md_cell(FILE *out, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '|')
            fputc('\\', out);
        fputc(*s == '\n' ? ' ' : *s, out);
    }
}

void config_markdown(const struct config *cfg, FILE *out)
{
    size_t n, i;
    const struct config_def *defs = config_defs(cfg, &n);
    const char *pre = config_env_prefix(cfg);
    char allow[512];

    fprintf(out, "| Key | Environment | Type | Default | Allowed | Description |\n");
    fprintf(out, "|---|---|---|---|---|---|\n");
    for (i = 0; i < n; i++) {
        const struct config_def *d = &defs[i];
        const char *env = config_env_name(cfg, d->name);
        fprintf(out, "| `%s` | `%s` | %s | ", d->name, env, type_name(d->type));
        if (d->flags & CONFIG_REQUIRED)
            fprintf(out, "*required*");
        else if (d->default_value && d->default_value[0] != '\0') {
            fputc('`', out);
            md_cell(out, d->default_value);
            fputc('`', out);
        }
        allowed(d, 1, allow, sizeof(allow));
        fprintf(out, " | ");
        md_cell(out, allow);
        fprintf(out, " | ");
        md_cell(out, d->help);
        if (d->flags & CONFIG_SECRET)
            fprintf(out, " Secret: shown as `***`; may be read from the file named by `%s_FILE`.",
                    env);
        fprintf(out, " |\n");
    }
    fprintf(out,
            "| `kafka.<property>` | `%sKAFKA__<PROPERTY>` | string | | | Any other "
            "librdkafka property, passed through (in the variable name '.' is `_` and '_' is "
            "`__`). |\n",
            pre);
}
