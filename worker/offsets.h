/* offsets.h - which offset of one partition may be committed, given out-of-order completion.
 *
 * Owns: for one assigned partition, the offsets dispatched to handlers (in the order
 * they were dispatched, which is increasing offset order) and which of them completed.
 * The commit offset is the end of the contiguous completed prefix: with dispatched
 * 5,6,8,9 and completed 5,6,9 it is 8 (the next offset to read after a restart).
 *
 * Only offsets that were dispatched are waited for. librdkafka skips offsets the
 * application never sees (transaction markers, aborted or compacted records), so "the
 * offset after 6" is simply the next dispatched one; once 8 and 9 complete, the commit
 * offset is 10.
 *
 * Memory: a ring of the dispatched offsets that are not yet part of the committed
 * prefix (the "window"), grown by doubling up to a hard limit given at init; a finished
 * prefix is dropped as soon as it is contiguous. The caller keeps the window small by
 * pausing the partition (see offsets_window()).
 *
 * Thread-safety: none; the scheduler calls it under its own lock. Pure logic, no I/O.
 */
#ifndef HSQB_OFFSETS_H
#define HSQB_OFFSETS_H

#include <stddef.h>
#include <stdint.h>

#define OFFSETS_NONE (-1) /* no commit offset yet */

struct offsets {
    int64_t *ring;      /* dispatched offsets, ascending, from ring[head] */
    uint64_t *done;     /* bitmap parallel to ring: completed */
    size_t cap;         /* allocated slots (power of two), 0 before the first dispatch */
    size_t head, count; /* window = count slots starting at head */
    size_t max_window;  /* hard limit on count */
    size_t pending;     /* dispatched and not completed */
    int64_t last;       /* highest dispatched offset, -1 none */
    int64_t commit;     /* next offset to commit, OFFSETS_NONE until something completed */
};

enum offsets_result {
    OFFSETS_OK = 0,
    OFFSETS_STALE,   /* offset <= the last dispatched one (a rewind): not tracked */
    OFFSETS_FULL,    /* the window holds max_window offsets already: not tracked */
    OFFSETS_NOMEM,   /* allocation failed: not tracked */
    OFFSETS_UNKNOWN, /* offsets_complete(): never dispatched, or already completed */
};

/* Initialises an empty tracker whose window may hold up to max_window (>= 1) offsets.
 * Allocates nothing yet. Release with offsets_release(). */
void offsets_init(struct offsets *t, size_t max_window);
/* Frees the ring; t may be re-initialised afterwards. */
void offsets_release(struct offsets *t);
/* Forgets everything (a partition reassigned to us starts from the committed offset
 * again); keeps max_window and the allocation. */
void offsets_reset(struct offsets *t);

/* Records that `offset` (>= 0) was handed to a handler. Offsets must increase; gaps are
 * fine. */
enum offsets_result offsets_dispatch(struct offsets *t, int64_t offset);

/* Records that the handler of `offset` finished; advances the commit offset over the
 * contiguous completed prefix. Returns OFFSETS_OK or OFFSETS_UNKNOWN. O(log window). */
enum offsets_result offsets_complete(struct offsets *t, int64_t offset);

/* Next offset to commit (last offset of the contiguous completed prefix + 1), or
 * OFFSETS_NONE when nothing completed since init/reset. Never decreases until a reset. */
int64_t offsets_committable(const struct offsets *t);

/* Dispatched, not completed. */
size_t offsets_pending(const struct offsets *t);
/* Offsets held: dispatched and not yet part of the committed prefix. */
size_t offsets_window(const struct offsets *t);

#endif
