/* guard.c - absolute request deadlines for libmicrohttpd listeners (see guard.h).
 *
 * Records form a doubly linked list under g->mu; a connection's socket context points at
 * its record, so the request callbacks find it through MHD_CONNECTION_INFO_SOCKET_CONTEXT
 * without a lookup. The reaper holds the mutex while it shuts sockets down, and the
 * CLOSED notification takes the same mutex before it closes the duplicate, so a record
 * is never used after it was freed.
 */
#include "worker/guard.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"

struct rec {
    struct guard *g;
    int fd;           /* our dup of the connection's socket; -1 when none could be made */
    int64_t start_ms; /* clock_mono_ms when the current request's clock started */
    int read;         /* the request was read whole: no deadline */
    int cut;          /* shut down already */
    struct rec *prev, *next;
};

struct guard {
    char name[16];
    int64_t deadline_ms;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    pthread_t reaper;
    struct rec *head;
    _Atomic uint64_t cut;
    struct log_limit log; /* libmicrohttpd's messages, one a second */
};

static void *reap(void *opaque)
{
    struct guard *g = opaque;
    struct timespec ts;
    uint64_t n;

    pthread_mutex_lock(&g->mu);
    while (!g->stop) {
        int64_t now = clock_mono_ms();

        n = 0;
        for (struct rec *r = g->head; r; r = r->next) {
            if (r->read || r->cut || r->fd < 0 || now - r->start_ms <= g->deadline_ms)
                continue;
            shutdown(r->fd, SHUT_RDWR);
            r->cut = 1;
            n++;
        }
        if (n) {
            atomic_fetch_add(&g->cut, n);
            log_debug("%s: cut %llu connection(s) whose request took over %lld ms", g->name,
                      (unsigned long long)n, (long long)g->deadline_ms);
        }
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += GUARD_TICK_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&g->cv, &g->mu, &ts);
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

struct guard *guard_new(const char *name, int64_t deadline_ms, char *errstr, size_t errsz)
{
    struct guard *g = calloc(1, sizeof *g);
    int rc;

    if (!g) {
        snprintf(errstr, errsz, "%s: out of memory", name);
        return NULL;
    }
    snprintf(g->name, sizeof g->name, "%s", name);
    g->deadline_ms = deadline_ms > 0 ? deadline_ms : 1;
    g->log = (struct log_limit)LOG_LIMIT_INIT;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    if ((rc = pthread_create(&g->reaper, NULL, reap, g)) != 0) {
        snprintf(errstr, errsz, "%s: cannot start the deadline thread: %s", name, strerror(rc));
        pthread_cond_destroy(&g->cv);
        pthread_mutex_destroy(&g->mu);
        free(g);
        return NULL;
    }
    return g;
}

void guard_free(struct guard *g)
{
    struct rec *r, *next;

    if (!g)
        return;
    pthread_mutex_lock(&g->mu);
    g->stop = 1;
    pthread_cond_signal(&g->cv);
    pthread_mutex_unlock(&g->mu);
    pthread_join(g->reaper, NULL);
    for (r = g->head; r; r = next) { /* none when the daemon stopped first */
        next = r->next;
        if (r->fd >= 0)
            close(r->fd);
        free(r);
    }
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

void guard_on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                         enum MHD_ConnectionNotificationCode toe)
{
    struct guard *g = cls;
    struct rec *r;
    const union MHD_ConnectionInfo *ci;

    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        if (!(r = calloc(1, sizeof *r))) {
            *socket_context = NULL; /* unguarded: only the idle timeout bounds it */
            return;
        }
        ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        r->g = g;
        r->fd = ci ? fcntl(ci->connect_fd, F_DUPFD_CLOEXEC, 0) : -1;
        r->start_ms = clock_mono_ms();
        pthread_mutex_lock(&g->mu);
        r->next = g->head;
        if (g->head)
            g->head->prev = r;
        g->head = r;
        pthread_mutex_unlock(&g->mu);
        *socket_context = r;
        return;
    }
    if (toe != MHD_CONNECTION_NOTIFY_CLOSED || !(r = *socket_context))
        return;
    pthread_mutex_lock(&g->mu);
    if (r->prev)
        r->prev->next = r->next;
    else
        g->head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    pthread_mutex_unlock(&g->mu);
    if (r->fd >= 0)
        close(r->fd);
    free(r);
    *socket_context = NULL;
}

static struct rec *rec_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

    return ci ? ci->socket_context : NULL;
}

static void mark(struct MHD_Connection *c, int read)
{
    struct rec *r = rec_of(c);

    if (!r)
        return;
    pthread_mutex_lock(&r->g->mu);
    r->read = read;
    if (!read)
        r->start_ms = clock_mono_ms();
    pthread_mutex_unlock(&r->g->mu);
}

void guard_request_read(struct MHD_Connection *c)
{
    mark(c, 1);
}

void guard_request_done(struct MHD_Connection *c)
{
    mark(c, 0);
}

void guard_log(struct guard *g, const char *msg)
{
    uint64_t dropped;

    if (!g) {
        log_warn("httpd: %s", msg);
        return;
    }
    if (log_limit_take(&g->log, &dropped))
        log_warn("%s httpd: %s (%llu more messages not logged)", g->name, msg,
                 (unsigned long long)dropped);
}

uint64_t guard_cut_count(struct guard *g)
{
    return g ? atomic_load(&g->cut) : 0;
}
