/* metrics_render.c - the Prometheus text exposition (format 0.0.4) of the registry.
 *
 * Rendering only reads: each value is one relaxed atomic load, so a scrape never blocks
 * an update (and sees each value atomically, not one snapshot across series). Values are
 * int64 in the unit callers measure (ms for durations); families whose Prometheus unit
 * is seconds render ms/1000 exactly with three decimals, so no floating point
 * accumulates. A histogram keeps per-bucket (non-cumulative) counts; rendering
 * accumulates them and derives _count from the same reads, so +Inf == _count always.
 * The text goes into one growing buffer capped at METRICS_MAX_RENDER; the process
 * metrics are read from /proc at each scrape.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "worker/metrics_internal.h"

struct sbuf {
    char *p;
    size_t len, cap;
    int err;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int sb_reserve(struct sbuf *b, size_t more)
{
    size_t ncap;
    char *np;

    if (b->err)
        return -1;
    if (b->len + more + 1 <= b->cap)
        return 0;
    if (b->len + more + 1 > METRICS_MAX_RENDER + 1) {
        b->err = E2BIG;
        return -1;
    }
    ncap = b->cap != 0 ? b->cap : 16384;
    while (ncap < b->len + more + 1)
        ncap *= 2;
    if ((np = realloc(b->p, ncap)) == NULL) {
        b->err = ENOMEM;
        return -1;
    }
    b->p = np;
    b->cap = ncap;
    return 0;
}

static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;
    char small[512];

    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0 || sb_reserve(b, (size_t)n) < 0) {
        if (n < 0)
            b->err = EINVAL;
        return;
    }
    if ((size_t)n < sizeof(small)) {
        memcpy(b->p + b->len, small, (size_t)n + 1);
    } else {
        va_start(ap, fmt);
        vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

/* A label value in the exposition format: \ " and newline escaped. */
static void sb_label_value(struct sbuf *b, const char *v)
{
    size_t n = strlen(v), i;

    if (sb_reserve(b, 2 * n) < 0)
        return;
    for (i = 0; i < n; i++) {
        if (v[i] == '\\' || v[i] == '"') {
            b->p[b->len++] = '\\';
            b->p[b->len++] = v[i];
        } else if (v[i] == '\n') {
            b->p[b->len++] = '\\';
            b->p[b->len++] = 'n';
        } else {
            b->p[b->len++] = v[i];
        }
    }
    b->p[b->len] = '\0';
}

/* name{l1="v1",...[,le="x"]} */
static void sb_series_name(struct sbuf *b, const char *name, const char *suffix,
                           const struct fam_def *d, const struct series *s, const char *le)
{
    size_t i;
    int any = 0;

    sb_printf(b, "%s%s", name, suffix);
    for (i = 0; i < d->nlabels; i++) {
        sb_printf(b, "%s%s=\"", any++ ? "," : "{", d->labels[i]);
        sb_label_value(b, s->vals[i]);
        sb_printf(b, "\"");
    }
    if (le)
        sb_printf(b, "%sle=\"%s\"", any++ ? "," : "{", le);
    if (any)
        sb_printf(b, "}");
}

/* An int64 number of ms as seconds with three decimals, exactly. */
static void sb_ms_as_s(struct sbuf *b, int64_t ms)
{
    uint64_t a = ms < 0 ? (uint64_t)0 - (uint64_t)ms : (uint64_t)ms;

    sb_printf(b, "%s%" PRIu64 ".%03u", ms < 0 ? "-" : "", a / 1000, (unsigned)(a % 1000));
}

static void render_family(struct sbuf *b, struct family *f)
{
    const struct fam_def *d = f->def;
    size_t i, k, n = atomic_load_explicit(&f->n, memory_order_acquire);
    struct series *s;
    uint64_t cum;

    sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", d->name, d->help, d->name,
              d->kind == K_COUNTER ? "counter"
              : d->kind == K_GAUGE ? "gauge"
                                   : "histogram");
    for (i = 0; i < n; i++) {
        s = f->order[i];
        if (d->kind != K_HISTOGRAM) {
            if (!atomic_load_explicit(&s->visible, memory_order_relaxed))
                continue;
            sb_series_name(b, d->name, "", d, s, NULL);
            sb_printf(b, " ");
            if (d->ms_to_s)
                sb_ms_as_s(b, atomic_load_explicit(&s->value, memory_order_relaxed));
            else
                sb_printf(b, "%" PRId64, atomic_load_explicit(&s->value, memory_order_relaxed));
            sb_printf(b, "\n");
            continue;
        }
        for (k = 0, cum = 0; k <= d->nbuckets; k++) {
            cum += atomic_load_explicit(&s->buckets[k], memory_order_relaxed);
            sb_series_name(b, d->name, "_bucket", d, s,
                           k < d->nbuckets ? d->buckets[k].le : "+Inf");
            sb_printf(b, " %" PRIu64 "\n", cum);
        }
        sb_series_name(b, d->name, "_sum", d, s, NULL);
        sb_printf(b, " ");
        sb_ms_as_s(b, atomic_load_explicit(&s->sum, memory_order_relaxed));
        sb_printf(b, "\n");
        sb_series_name(b, d->name, "_count", d, s, NULL);
        sb_printf(b, " %" PRIu64 "\n", cum);
    }
}

/* The fields of /proc/self/stat after the command name (which may itself hold spaces and
 * ')'): the text after the last ')', read into buf. It starts with " <state>", field 3.
 * NULL when /proc is unavailable. */
static const char *proc_self_stat(char *buf, size_t bufsz)
{
    FILE *fp = fopen("/proc/self/stat", "r");
    size_t n;
    char *p;

    if (!fp)
        return NULL;
    n = fread(buf, 1, bufsz - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    p = strrchr(buf, ')');
    return p ? p + 1 : NULL;
}

double metrics_process_start_time(void)
{
    char buf[4096];
    const char *p;
    FILE *fp;
    unsigned long long btime = 0, start = 0;
    long tck = sysconf(_SC_CLK_TCK);
    int field;

    fp = fopen("/proc/stat", "r");
    if (fp) {
        while (fgets(buf, sizeof(buf), fp))
            if (strncmp(buf, "btime ", 6) == 0) {
                btime = strtoull(buf + 6, NULL, 10);
                break;
            }
        fclose(fp);
    }
    /* starttime is field 22 */
    if ((p = proc_self_stat(buf, sizeof(buf))) != NULL) {
        for (field = 2; *p != '\0' && field < 21; p++)
            if (*p == ' ')
                field++;
        start = strtoull(p, NULL, 10);
    }
    if (btime == 0 || start == 0 || tck <= 0)
        return (double)time(NULL);
    return (double)btime + (double)start / (double)tck;
}

/* An unlabelled gauge: HELP, TYPE and its one sample. */
static void render_gauge(struct sbuf *b, const char *name, const char *help, int64_t v)
{
    sb_printf(b, "# HELP %s %s\n# TYPE %s gauge\n%s %" PRId64 "\n", name, help, name, name, v);
}

static void render_process(struct sbuf *b, const struct metrics *m)
{
    char buf[4096];
    const char *p;
    int field;
    unsigned long long ut = 0, st = 0;
    long long rss = -1;
    long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);

    /* fields: 3 state ... 14 utime 15 stime ... 24 rss */
    if ((p = proc_self_stat(buf, sizeof(buf))) != NULL) {
        for (field = 2; *p != '\0'; p++) {
            if (*p != ' ')
                continue;
            field++;
            if (field == 14)
                ut = strtoull(p + 1, NULL, 10);
            else if (field == 15)
                st = strtoull(p + 1, NULL, 10);
            else if (field == 24) {
                rss = strtoll(p + 1, NULL, 10);
                break;
            }
        }
    }
    if (rss >= 0 && page > 0)
        sb_printf(b,
                  "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
                  "# TYPE process_resident_memory_bytes gauge\n"
                  "process_resident_memory_bytes %lld\n",
                  rss * (long long)page);
    if (tck > 0)
        sb_printf(b,
                  "# HELP process_cpu_seconds_total Total user and system CPU time spent "
                  "in seconds.\n# TYPE process_cpu_seconds_total counter\n"
                  "process_cpu_seconds_total %.2f\n",
                  (double)(ut + st) / (double)tck);
    sb_printf(b,
              "# HELP process_start_time_seconds Start time of the process since unix "
              "epoch in seconds.\n# TYPE process_start_time_seconds gauge\n"
              "process_start_time_seconds %.2f\n",
              m->start_time_s);
}

int metrics_render(struct metrics *m, char **out, size_t *len, char *errstr, size_t errsz)
{
    struct sbuf b = {0};
    size_t i;

    if (!m) {
        snprintf(errstr, errsz, "metrics: no registry");
        return -1;
    }
    sb_printf(&b, "# HELP hsqb_build_info Build information; the value is always 1.\n"
                  "# TYPE hsqb_build_info gauge\nhsqb_build_info{version=\"");
    sb_label_value(&b, m->version);
    sb_printf(&b, "\"} 1\n");
    for (i = 0; i < F_COUNT; i++)
        render_family(&b, &m->fam[i]);
    render_gauge(&b, "hsqb_in_flight", "Events dispatched to workers and not finished.",
                 atomic_load_explicit(&m->in_flight, memory_order_relaxed));
    render_gauge(&b, "hsqb_partitions_paused",
                 "Partitions paused because their in-flight bound was reached.",
                 atomic_load_explicit(&m->paused, memory_order_relaxed));
    render_gauge(&b, "hsqb_retry_held",
                 "Retry-topic records held in memory waiting for their not-before time.",
                 atomic_load_explicit(&m->held, memory_order_relaxed));
    sb_printf(&b,
              "# HELP hsqb_mapping_cache_lookups_total Customer, item, term and account "
              "mappings looked up in the worker's memory (cache.local_ttl) before Redis.\n"
              "# TYPE hsqb_mapping_cache_lookups_total counter\n"
              "hsqb_mapping_cache_lookups_total{result=\"hit\"} %" PRId64 "\n"
              "hsqb_mapping_cache_lookups_total{result=\"miss\"} %" PRId64 "\n",
              atomic_load_explicit(&m->map_hits, memory_order_relaxed),
              atomic_load_explicit(&m->map_misses, memory_order_relaxed));
    render_gauge(&b, "hsqb_partitions_assigned",
                 "Partitions assigned to this consumer (-1 before the first assignment report).",
                 atomic_load_explicit(&m->assigned, memory_order_relaxed));
    sb_printf(&b, "# HELP hsqb_metrics_series_overflow_total Updates folded into the "
                  "\"other\" series because a family reached its label-set cap.\n"
                  "# TYPE hsqb_metrics_series_overflow_total counter\n");
    for (i = 0; i < F_COUNT; i++)
        sb_printf(&b, "hsqb_metrics_series_overflow_total{metric=\"%s\"} %" PRId64 "\n",
                  m->fam[i].def->name,
                  atomic_load_explicit(&m->fam[i].overflow, memory_order_relaxed));
    render_process(&b, m);
    if (b.err) {
        snprintf(errstr, errsz, "metrics: render failed: %s",
                 b.err == E2BIG ? "output over METRICS_MAX_RENDER" : strerror(b.err));
        free(b.p);
        return -1;
    }
    if (!b.p && (b.p = strdup("")) == NULL) {
        snprintf(errstr, errsz, "metrics: out of memory");
        return -1;
    }
    *out = b.p;
    if (len)
        *len = b.len;
    return 0;
}
