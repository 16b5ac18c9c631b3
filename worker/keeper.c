/* keeper.c - see keeper.h. A sweep copies the registered leases under the lock, renews
 * them without it (Redis I/O must never block keeper_add/remove on worker threads), then
 * flags, under the lock again, the entries that are still registered with the same token
 * and were found lost: an entry removed (and its memory reused for another claim) during
 * the renewals is never touched. */
#include "worker/keeper.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"

#define KEEPER_MIN_PERIOD_MS 500

struct keeper {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t th;
    int stop;
    struct kept *head;
    struct redis_conn *redis; /* the keeper thread's own connection */
    int64_t lease_ms;
};

void keeper_add(struct keeper *k, struct kept *e)
{
    atomic_store(&e->lost, 0);
    pthread_mutex_lock(&k->mu);
    e->prev = NULL;
    e->next = k->head;
    if (k->head)
        k->head->prev = e;
    k->head = e;
    e->linked = 1;
    pthread_mutex_unlock(&k->mu);
}

void keeper_remove(struct keeper *k, struct kept *e)
{
    pthread_mutex_lock(&k->mu);
    if (e->linked) {
        if (e->prev)
            e->prev->next = e->next;
        else
            k->head = e->next;
        if (e->next)
            e->next->prev = e->prev;
        e->next = e->prev = NULL;
        e->linked = 0;
    }
    pthread_mutex_unlock(&k->mu);
}

static void sweep(struct keeper *k)
{
    struct {
        struct kept *e;
        struct redis_lease l;
        enum redis_owner_status st;
    } *snap = NULL;
    size_t n = 0, i, cap = 0;
    struct kept *e;
    char err[256];

    pthread_mutex_lock(&k->mu);
    for (e = k->head; e; e = e->next)
        cap++;
    if (cap)
        snap = calloc(cap, sizeof *snap);
    for (e = k->head; e && snap; e = e->next, n++) {
        snap[n].e = e;
        snap[n].l = e->lease;
    }
    pthread_mutex_unlock(&k->mu);
    for (i = 0; i < n; i++) {
        snap[i].st = redis_lease_renew(k->redis, &snap[i].l, k->lease_ms, err, sizeof err);
        if (snap[i].st == REDIS_OWNER_ERROR)
            log_warn("lease keeper: renewing %s failed: %s", snap[i].l.key, err);
    }
    pthread_mutex_lock(&k->mu);
    for (i = 0; i < n; i++) {
        if (snap[i].st != REDIS_OWNER_LOST)
            continue;
        for (e = k->head; e; e = e->next) /* still registered, same claim (token) */
            if (e == snap[i].e && strcmp(e->lease.token, snap[i].l.token) == 0) {
                atomic_store(&e->lost, 1);
                break;
            }
    }
    pthread_mutex_unlock(&k->mu);
    free(snap);
}

static void *keeper_main(void *opaque)
{
    struct keeper *k = opaque;
    int64_t period = k->lease_ms / 3;
    struct timespec until;

    if (period < KEEPER_MIN_PERIOD_MS)
        period = KEEPER_MIN_PERIOD_MS;
    pthread_mutex_lock(&k->mu);
    while (!k->stop) {
        clock_abstime(CLOCK_MONOTONIC, period, &until);
        while (!k->stop && pthread_cond_timedwait(&k->cv, &k->mu, &until) == 0)
            ;
        if (k->stop)
            break;
        pthread_mutex_unlock(&k->mu);
        sweep(k);
        pthread_mutex_lock(&k->mu);
    }
    pthread_mutex_unlock(&k->mu);
    return NULL;
}

struct keeper *keeper_new(const struct redis_opts *o, int64_t lease_ms, char *errstr, size_t errsz)
{
    struct keeper *k = calloc(1, sizeof *k);

    if (!k) {
        snprintf(errstr, errsz, "lease keeper: out of memory");
        return NULL;
    }
    k->lease_ms = lease_ms;
    k->redis = redis_conn_new(o, errstr, errsz);
    if (!k->redis) {
        free(k);
        return NULL;
    }
    pthread_mutex_init(&k->mu, NULL);
    clock_cond_init(&k->cv);
    if (pthread_create(&k->th, NULL, keeper_main, k) != 0) {
        snprintf(errstr, errsz, "lease keeper: cannot start its thread");
        pthread_cond_destroy(&k->cv);
        pthread_mutex_destroy(&k->mu);
        redis_conn_free(k->redis);
        free(k);
        return NULL;
    }
    return k;
}

void keeper_free(struct keeper *k)
{
    if (!k)
        return;
    pthread_mutex_lock(&k->mu);
    k->stop = 1;
    pthread_cond_broadcast(&k->cv);
    pthread_mutex_unlock(&k->mu);
    pthread_join(k->th, NULL);
    pthread_cond_destroy(&k->cv);
    pthread_mutex_destroy(&k->mu);
    redis_conn_free(k->redis);
    free(k);
}
