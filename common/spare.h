/* spare.h - a thread's spare buffers: memory a module keeps for the calling thread's next
 * use instead of freeing it, freed when the thread exits.
 *
 * Owns: every buffer put into a struct spare_set, from spare_put() until spare_take()
 * hands it back or the thread exits; and one process-wide thread-specific key whose
 * destructor frees the buffers of every set the exiting thread filled.
 *
 * Use: each module declares its set `static __thread struct spare_set name = {free_fn};`
 * (its slots are its own: say, a body and a header buffer), takes a spare before
 * allocating and puts a buffer back instead of freeing it. What fits a slot (a size cap)
 * is the module's decision, made before spare_put().
 *
 * Invariants: a slot holds at most one buffer. A buffer is kept only when the thread's
 * key holds its sets (the first spare_put() of a thread registers them); when the key
 * cannot be created or set, nothing is kept: spare_put() says 0 and the caller frees.
 * AddressSanitizer builds should keep no released buffers (SPARE_BUFFERS is 0 there), so
 * that reading one still faults; a module may keep objects that are not released memory
 * (a digest context) regardless.
 *
 * Thread-safety: a set is thread-local, so every call touches only the calling thread's
 * state; the key is created once (pthread_once).
 */
#ifndef HSQB_SPARE_H
#define HSQB_SPARE_H

#include <stddef.h>

#define SPARE_SLOTS 2 /* buffers a set keeps at most */

/* 0 in AddressSanitizer builds: a released buffer must fault when read there. */
#ifdef __SANITIZE_ADDRESS__
#define SPARE_BUFFERS 0
#else
#define SPARE_BUFFERS 1
#endif

struct spare_set {
    void (*free_fn)(void *); /* how a kept buffer is freed at thread exit; NULL: free() */
    void *p[SPARE_SLOTS];    /* owned while set */
    size_t cap[SPARE_SLOTS]; /* the buffer's capacity, in the module's unit */
    struct spare_set *next;  /* the thread's other sets the key frees */
    int listed;              /* in the thread's list */
};

/* The buffer in slot when it holds at least want (in the module's unit): returned with its
 * capacity in *cap, the slot emptied, the caller owning it. NULL (slot untouched) when
 * the slot is empty or too small. */
void *spare_take(struct spare_set *s, size_t slot, size_t want, size_t *cap);

/* Keep p (capacity cap) in slot when the slot is empty and the thread can keep spares:
 * 1, and the set owns p. Else 0: p still the caller's to free. The first wipe bytes of p
 * (0: none; for buffers that held secrets) are zeroed when the slot was free, even if the
 * thread's key then refuses p. p may be NULL (0). */
int spare_put(struct spare_set *s, size_t slot, void *p, size_t cap, size_t wipe);

#endif
