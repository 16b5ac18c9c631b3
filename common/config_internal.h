/* config_internal.h - private to common/config*.c: the representation of struct config.
 *
 * Owns nothing; it shares the layout and a few helpers between config.c (values,
 * access, librdkafka) and config_load.c (the file, env and flag sources). No other
 * file may include it: the rest of the program sees only common/config.h.
 */
#ifndef HSQB_CONFIG_INTERNAL_H
#define HSQB_CONFIG_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/config.h"

enum config_src { CONFIG_SRC_DEFAULT, CONFIG_SRC_FILE, CONFIG_SRC_ENV, CONFIG_SRC_FLAG };

/* One key's current value. `text` is the canonical form ("" when unset), never NULL. */
struct cvalue {
    enum config_src src;
    int line;     /* config-file line when src == CONFIG_SRC_FILE, else 0 */
    char *where;  /* "default", "FILE:LINE", "env VAR", "flag --key" */
    char *text;   /* */
    int64_t num;  /* int, duration (ms), size (bytes) */
    int b;        /* bool */
    char **items; /* list: NULL-terminated */
    size_t nitems;
};

/* A librdkafka pass-through property; name without the "kafka." prefix. */
struct kprop {
    char *name, *value, *where;
    enum config_src src;
    int line;
};

struct config {
    const struct config_def *defs; /* borrowed from the caller */
    size_t ndefs;
    char *prefix;        /* e.g. "HSQB_" */
    char **env_names;    /* per def: prefix + KEY */
    struct cvalue *vals; /* per def */
    struct kprop *kp;    /* in the order first given */
    size_t nkp, capkp;
    char **ignored; /* NULL-terminated names of unknown prefixed variables */
    size_t nignored;
    int loaded;
};

void cfg_err(char *errstr, size_t errsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Allocation that aborts on failure (start-up only, where that is the right answer). */
char *cfg_xstrdup(const char *s);
void *cfg_xcalloc(size_t n, size_t sz);
char *cfg_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Trims spaces and tabs in place; returns the first kept byte. */
char *cfg_trim(char *s);
/* Index of key in the table, or -1. */
ssize_t cfg_find_key(const struct config *cfg, const char *key);
/* Whether p is a plausible librdkafka property name. */
int cfg_prop_name_ok(const char *p);
struct kprop *cfg_kprop_find(const struct config *cfg, const char *prop);
/* Where a value came from: its source, a description ("default", a file name, an
 * environment variable, a flag; borrowed) and its line in a file (0 otherwise). */
struct cfg_origin {
    enum config_src src;
    const char *where;
    int line;
};
void cfg_kprop_set(struct config *cfg, const char *prop, const char *value,
                   const struct cfg_origin *o);
/* Sets a table key or a kafka.* pass-through from `value` given at o. Returns 0, -1 on a
 * bad value (errstr set), or -2 when the key is unknown (errstr untouched). */
int cfg_set_key(struct config *cfg, const char *key, const char *value, const struct cfg_origin *o,
                char *errstr, size_t errsz);

#endif
