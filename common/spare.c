/* spare.c - the thread's spare buffers (see spare.h).
 *
 * One thread-specific key for the whole process, whose value is the address of the
 * thread's list of sets (a thread-local head): the first spare_put() on a thread sets it,
 * and a set joins the list the first time it keeps something. At thread exit the key's
 * destructor walks the list, frees every slot and leaves each set empty and unlisted, so
 * a spare_put() during a later destructor registers afresh (the C library then runs the
 * destructors again, as it does for any key set during them).
 *
 * Why one key and not one per module: the key, its once-guard and the registration dance
 * were written alike in each module keeping spares (hash.c, jtape.c, http.c).
 */
#include "common/spare.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static pthread_key_t spare_key;
static int spare_key_ok;
static pthread_once_t spare_once = PTHREAD_ONCE_INIT;
static __thread struct spare_set *thread_sets; /* the sets the key frees at exit */

static void sets_free(void *arg)
{
    struct spare_set **head = arg, *s, *next;

    for (s = *head; s; s = next) {
        next = s->next;
        for (size_t i = 0; i < SPARE_SLOTS; i++) {
            if (s->p[i] && s->free_fn)
                s->free_fn(s->p[i]);
            else
                free(s->p[i]);
            s->p[i] = NULL;
            s->cap[i] = 0;
        }
        s->next = NULL;
        s->listed = 0;
    }
    *head = NULL;
}

static void spare_key_init(void)
{
    spare_key_ok = pthread_key_create(&spare_key, sets_free) == 0;
}

/* s in the thread's list, and the list held by the key: 0, or -1 when the key cannot
 * hold it (then nothing may be kept: no destructor would free it). */
static int set_list(struct spare_set *s)
{
    if (s->listed)
        return 0;
    if (pthread_getspecific(spare_key) == NULL &&
        pthread_setspecific(spare_key, &thread_sets) != 0)
        return -1;
    s->next = thread_sets;
    thread_sets = s;
    s->listed = 1;
    return 0;
}

void *spare_take(struct spare_set *s, size_t slot, size_t want, size_t *cap)
{
    void *p = s->p[slot];

    if (!p || s->cap[slot] < want)
        return NULL;
    *cap = s->cap[slot];
    s->p[slot] = NULL;
    return p;
}

int spare_put(struct spare_set *s, size_t slot, void *p, size_t cap, size_t wipe)
{
    pthread_once(&spare_once, spare_key_init);
    if (!spare_key_ok || !p || s->p[slot])
        return 0;
    if (wipe) /* before set_list(): a buffer it refuses is freed by the caller wiped */
        explicit_bzero(p, wipe);
    if (set_list(s) < 0)
        return 0;
    s->p[slot] = p;
    s->cap[slot] = cap;
    return 1;
}
