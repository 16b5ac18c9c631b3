/* offsets.c - the contiguous-completed-prefix tracker of one partition.
 *
 * Why a ring of the dispatched offsets rather than a bitmap indexed by (offset - base):
 * librdkafka never hands us some offsets (transaction markers, aborted and compacted
 * records), and a bitmap would have to guess which missing offsets will never come. The
 * ring only ever holds what was actually dispatched, in dispatch order, which is
 * ascending, so completion finds its slot by binary search and the prefix advances
 * over whatever gaps lie between dispatched offsets.
 *
 * The life of one offset:
 *
 *   (absent) --offsets_dispatch--> pending --offsets_complete--> done, held in the window
 *       ^                                                            |
 *       |             (becomes the head of the window) offsets_complete pops it,
 *       +------------------------- commit = offset + 1 <-------------+
 *
 * offsets_reset() returns every offset to "absent".
 */
#include "worker/offsets.h"

#include <stdlib.h>
#include <string.h>

#define OFFSETS_MIN_CAP 16

static size_t slot(const struct offsets *t, size_t i)
{
    return (t->head + i) & (t->cap - 1);
}

static int bit_get(const uint64_t *bm, size_t i)
{
    return (bm[i / 64] >> (i % 64)) & 1u;
}

static void bit_set(uint64_t *bm, size_t i, int v)
{
    if (v)
        bm[i / 64] |= (uint64_t)1 << (i % 64);
    else
        bm[i / 64] &= ~((uint64_t)1 << (i % 64));
}

static size_t bitmap_words(size_t cap)
{
    return (cap + 63) / 64;
}

void offsets_init(struct offsets *t, size_t max_window)
{
    memset(t, 0, sizeof(*t));
    t->max_window = max_window > 0 ? max_window : 1;
    t->last = -1;
    t->commit = OFFSETS_NONE;
}

void offsets_release(struct offsets *t)
{
    free(t->ring);
    free(t->done);
    t->ring = NULL;
    t->done = NULL;
    t->cap = t->head = t->count = t->pending = 0;
}

void offsets_reset(struct offsets *t)
{
    t->head = t->count = t->pending = 0;
    t->last = -1;
    t->commit = OFFSETS_NONE;
    if (t->done)
        memset(t->done, 0, bitmap_words(t->cap) * sizeof(uint64_t));
}

/* Doubles the ring (at least OFFSETS_MIN_CAP), moving the window to slot 0. */
static int grow(struct offsets *t)
{
    size_t ncap = t->cap ? t->cap * 2 : OFFSETS_MIN_CAP, i;
    int64_t *ring;
    uint64_t *done;

    if (ncap < t->cap)
        return -1;
    ring = malloc(ncap * sizeof(*ring));
    done = calloc(bitmap_words(ncap), sizeof(*done));
    if (!ring || !done) {
        free(ring);
        free(done);
        return -1;
    }
    for (i = 0; i < t->count; i++) {
        ring[i] = t->ring[slot(t, i)];
        bit_set(done, i, bit_get(t->done, slot(t, i)));
    }
    free(t->ring);
    free(t->done);
    t->ring = ring;
    t->done = done;
    t->cap = ncap;
    t->head = 0;
    return 0;
}

enum offsets_result offsets_dispatch(struct offsets *t, int64_t offset)
{
    size_t s;

    if (offset < 0 || offset <= t->last)
        return OFFSETS_STALE;
    if (t->count >= t->max_window)
        return OFFSETS_FULL;
    if (t->count == t->cap && grow(t) < 0)
        return OFFSETS_NOMEM;
    s = slot(t, t->count);
    t->ring[s] = offset;
    bit_set(t->done, s, 0);
    t->count++;
    t->pending++;
    t->last = offset;
    return OFFSETS_OK;
}

/* Index in the window (0..count-1) of offset, or count when absent. */
static size_t find(const struct offsets *t, int64_t offset)
{
    size_t lo = 0, hi = t->count;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int64_t v = t->ring[slot(t, mid)];

        if (v == offset)
            return mid;
        if (v < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    return t->count;
}

enum offsets_result offsets_complete(struct offsets *t, int64_t offset)
{
    size_t i = find(t, offset);

    if (i == t->count || bit_get(t->done, slot(t, i)))
        return OFFSETS_UNKNOWN;
    bit_set(t->done, slot(t, i), 1);
    t->pending--;
    while (t->count > 0 && bit_get(t->done, t->head)) {
        t->commit = t->ring[t->head] + 1;
        bit_set(t->done, t->head, 0);
        t->head = (t->head + 1) & (t->cap - 1);
        t->count--;
    }
    return OFFSETS_OK;
}

int64_t offsets_committable(const struct offsets *t)
{
    return t->commit;
}

size_t offsets_pending(const struct offsets *t)
{
    return t->pending;
}

size_t offsets_window(const struct offsets *t)
{
    return t->count;
}
