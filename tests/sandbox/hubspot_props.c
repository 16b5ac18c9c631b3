/* hubspot_props.c - the properties of one stored HubSpot object, in one allocation.
 *
 * Why not a json-c object: its hash table costs ~1 KB even for six properties, and the
 * bench seeds some 130,000 objects (deals, quotes and their line items), which took
 * ~270 MB. Here an object's properties are one block: for each, in the order they were
 * first set, its name, a NUL, a tag byte (1 = string, 0 = null), the value and a NUL;
 * ~150 bytes for a line item. Lookups scan the block (objects have a handful of
 * properties); a set or a delete rebuilds it (seeding and pricing only, never a read).
 *
 * Values are C strings: seeding stores strings, numbers and booleans as their text.
 * Locking is the caller's (hs.lock, as for every hs_obj field).
 */
#include <stdlib.h>
#include <string.h>

#include "tests/sandbox/hubspot_internal.h"

struct hs_props {
    size_t size;  /* bytes used in data */
    char data[];
};

/* The entry at pos: its name, tag and value, and the position after it. */
static size_t entry_at(const struct hs_props *p, size_t pos, const char **name, int *tag,
                       const char **value)
{
    const char *n = p->data + pos;
    size_t nl = strlen(n);
    *name = n;
    *tag = (unsigned char)n[nl + 1];
    *value = n + nl + 2;
    return pos + nl + 2 + strlen(*value) + 1;
}

static size_t find(const struct hs_props *p, const char *name, size_t *end)
{
    const char *n, *v;
    int tag;
    for (size_t pos = 0; p && pos < p->size;) {
        size_t next = entry_at(p, pos, &n, &tag, &v);
        if (strcmp(n, name) == 0) {
            *end = next;
            return pos;
        }
        pos = next;
    }
    return (size_t)-1;
}

int hs_props_get(const struct hs_props *p, const char *name, const char **value)
{
    size_t end, pos = find(p, name, &end);
    const char *n, *v;
    int tag;
    if (pos == (size_t)-1)
        return 0;
    entry_at(p, pos, &n, &tag, &v);
    if (value)
        *value = tag ? v : NULL;
    return 1;
}

const char *hs_props_next(const struct hs_props *p, size_t *pos, const char **value)
{
    const char *n, *v;
    int tag;
    if (!p || *pos >= p->size)
        return NULL;
    *pos = entry_at(p, *pos, &n, &tag, &v);
    if (value)
        *value = tag ? v : NULL;
    return n;
}

/* A copy of p with [cut, cut_end) replaced by the entry name = value (or by nothing
 * when name is NULL). */
static struct hs_props *rebuilt(const struct hs_props *p, size_t cut, size_t cut_end,
                                const char *name, const char *value)
{
    size_t old = p ? p->size : 0, nl = name ? strlen(name) : 0;
    size_t vl = value ? strlen(value) : 0, add = name ? nl + 2 + vl + 1 : 0;
    struct hs_props *q = malloc(sizeof(*q) + old - (cut_end - cut) + add);
    if (!q)
        return NULL;
    char *o = q->data;
    if (cut)
        memcpy(o, p->data, cut);
    o += cut;
    if (name) {
        memcpy(o, name, nl + 1);
        o[nl + 1] = value ? 1 : 0;
        memcpy(o + nl + 2, value ? value : "", vl + 1);
        o += add;
    }
    if (old > cut_end)
        memcpy(o, p->data + cut_end, old - cut_end);
    q->size = old - (cut_end - cut) + add;
    return q;
}

int hs_props_set(struct hs_props **p, const char *name, const char *value)
{
    size_t end = 0, pos = find(*p, name, &end);
    if (pos == (size_t)-1)
        pos = end = *p ? (*p)->size : 0;
    struct hs_props *q = rebuilt(*p, pos, end, name, value);
    if (!q)
        return -1;
    free(*p);
    *p = q;
    return 0;
}

void hs_props_del(struct hs_props **p, const char *name)
{
    size_t end, pos = find(*p, name, &end);
    struct hs_props *q;
    if (pos == (size_t)-1 || !(q = rebuilt(*p, pos, end, NULL, NULL)))
        return;
    free(*p);
    *p = q;
}

void hs_props_free(struct hs_props *p)
{
    free(p);
}
