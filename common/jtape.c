/* jtape.c - the strict JSON parser (see jtape.h for what it accepts and why a tape).
 *
 * One pass validates and records. Each value appends a node; a container's node is
 * pushed on a stack of open containers and learns where its subtree ends (next) when it
 * closes, which is also when an object's keys are checked for duplicates: pairwise for a
 * few keys, by sorting (key length, bytes) for more, so the check stays O(n log n)
 * whatever a peer sends, with no hash to flood. Keys, strings and number literals are
 * copied, unescaped and NUL-terminated, into an arena of len + 1 bytes allocated up
 * front: a string takes at least its decoded bytes plus two quotes, and a number at least
 * its literal plus a following byte (or the end, hence the + 1), so the arena cannot
 * overflow and never moves. Offsets rather than pointers keep the nodes small.
 *
 * Memory. The arena is bounded by the input; the nodes (24 bytes each) by the values
 * cap: a document of one-byte values ("[0,0,...]") would otherwise cost 12 node bytes
 * per input byte, 100-200 MB (with the array's doubling) for one 8 MiB answer, per
 * thread. The node array grows by doubling but never past the cap, and the value past
 * it fails the parse with JTAPE_ETOOMANY before anything more is allocated. It starts at
 * one node per JTAPE_BYTES_PER_VALUE input bytes (at most the cap), which the answers the
 * worker reads never exceed: a parse is then exactly two allocations, not one per
 * doubling. The duplicate-key check sorts on the stack up to JTAPE_SORT_LOCAL keys, past
 * that in a scratch array on the heap, freed when the parse ends.
 *
 * Reuse. A worker thread parses five or six answers an event, each of a few KB, so the
 * two buffers of a released tape stay with the thread as its spares (common/spare.h, when
 * at most JTAPE_SPARE_BYTES each) and the next parse that fits takes them: no malloc, no
 * free, and none of the bin consolidation large frees cause. The spares are freed when
 * the thread exits. AddressSanitizer builds keep no spares, so that reading a released
 * tape still faults there.
 */
#include "common/jtape.h"

#include <limits.h>
#include <locale.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/spare.h"

#define JTAPE_PAIRWISE_KEYS 8  /* objects up to this many keys are checked pairwise */
#define JTAPE_SORT_LOCAL    64 /* keys the duplicate check sorts without allocating */
#define JTAPE_NODES_MIN     16 /* the node array's first capacity, at least */

/* The calling thread's spare buffers (see Reuse above): the node array (its capacity in
 * nodes) and the arena (in bytes). */
enum { SPARE_NODES, SPARE_ARENA };
static __thread struct spare_set spares;

/* The thread's spare node array if it holds at least want nodes, else a new one; *cap
 * never says more than max (the values cap, which node_add() enforces by it). */
static struct jtape_node *nodes_get(size_t want, size_t max, size_t *cap)
{
    size_t ncap;
    struct jtape_node *n = spare_take(&spares, SPARE_NODES, want, &ncap);

    if (n) {
        *cap = ncap < max ? ncap : max;
        return n;
    }
    *cap = want;
    return malloc(want * sizeof *n);
}

static char *arena_get(size_t want, size_t *cap)
{
    char *a = spare_take(&spares, SPARE_ARENA, want, cap);

    if (a)
        return a;
    *cap = want;
    return malloc(want);
}

/* Keep what t holds as the thread's spares where they fit and the slots are free (freed
 * at thread exit); free the rest. */
static void tape_keep(struct jtape *t)
{
    if (SPARE_BUFFERS && t->n && t->cap * sizeof *t->n <= JTAPE_SPARE_BYTES &&
        spare_put(&spares, SPARE_NODES, t->n, t->cap, 0))
        t->n = NULL;
    if (SPARE_BUFFERS && t->arena && t->arena_cap <= JTAPE_SPARE_BYTES &&
        spare_put(&spares, SPARE_ARENA, t->arena, t->arena_cap, 0))
        t->arena = NULL;
    free(t->n);
    free(t->arena);
}

/* The process-wide cap jtape_parse() applies (jtape_set_max_values()); atomic so a late
 * set cannot tear a concurrent read, though start-up sets it before any thread parses. */
static size_t max_values_limit = JTAPE_MAX_VALUES_DEFAULT;

struct jkey {
    uint32_t off, len;
};

struct parse {
    const unsigned char *start, *p, *end;
    struct jtape *t;
    char *arena;       /* t->arena, filled up to t->arena_len */
    uint32_t *stack;   /* open containers (node indexes), max_depth of them */
    struct jkey *sort; /* scratch for the duplicate-key check: sort_local or the heap */
    size_t sortcap;
    struct jkey sort_local[JTAPE_SORT_LOCAL];
    size_t max_values; /* nodes the tape may hold */
    int too_many;      /* the parse failed on max_values */
    char *errstr;
    size_t errsz;
};

/* A string token as scanned: its body between the quotes, escapes still in. */
struct jstr {
    const unsigned char *s;
    size_t n;
    int escaped, has_nul;
};

__attribute__((format(printf, 2, 3))) static int parse_fail(struct parse *ps, const char *fmt, ...)
{
    char msg[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (ps->errstr && ps->errsz)
        snprintf(ps->errstr, ps->errsz, "%s at byte %zu", msg, (size_t)(ps->p - ps->start));
    return -1;
}

static void skip_ws(struct parse *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

size_t jtape_utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xBF;
    size_t len;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4;
    else
        return 0;
    if (n < len)
        return 0;
    if (c == 0xE0)
        lo = 0xA0;
    else if (c == 0xED)
        hi = 0x9F;
    else if (c == 0xF0)
        lo = 0x90;
    else if (c == 0xF4)
        hi = 0x8F;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return len;
}

enum jget_status jtape_dec_int64(const char *s, size_t n, int64_t *out)
{
    size_t i = 0;
    int neg = 0;
    uint64_t mag = 0, lim;

    if (i < n && s[i] == '-') {
        neg = 1;
        i++;
    }
    if (i >= n || s[i] < '0' || s[i] > '9' || (s[i] == '0' && i + 1 < n))
        return JGET_WRONG_TYPE;
    lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    int over = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return JGET_WRONG_TYPE;
        unsigned d = (unsigned)(s[i] - '0');
        if (mag > (lim - d) / 10)
            over = 1;
        else
            mag = mag * 10 + d;
    }
    if (over)
        return JGET_RANGE;
    *out = neg ? (mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag) : (int64_t)mag;
    return JGET_OK;
}

static int hex4(const unsigned char *p, const unsigned char *end, unsigned *out)
{
    unsigned v = 0;
    if (end - p < 4)
        return -1;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
            d = (c | 0x20) - 'a' + 10;
        else
            return -1;
        v = v << 4 | d;
    }
    *out = v;
    return 0;
}

/* At the opening quote: validates escapes and UTF-8 and leaves p after the closing
 * quote. Plain printable ASCII, the common case, is skipped a byte at a time without
 * further tests. */
static int scan_string(struct parse *ps, struct jstr *js)
{
    const unsigned char *body = ++ps->p;
    unsigned cu, lo;

    js->escaped = js->has_nul = 0;
    js->s = body; /* set on every path (the analyzer cannot see parse_fail is always -1) */
    js->n = 0;
    for (;;) {
        while (ps->p < ps->end && *ps->p >= 0x20 && *ps->p < 0x80 && *ps->p != '"' &&
               *ps->p != '\\')
            ps->p++;
        if (ps->p >= ps->end)
            return parse_fail(ps, "unterminated string");
        unsigned char c = *ps->p;
        if (c == '"')
            break;
        if (c < 0x20)
            return parse_fail(ps, c ? "raw control character in string" : "NUL byte in string");
        if (c >= 0x80) {
            size_t l = jtape_utf8_len(ps->p, (size_t)(ps->end - ps->p));
            if (!l)
                return parse_fail(ps, "invalid UTF-8");
            ps->p += l;
            continue;
        }
        js->escaped = 1;
        if (ps->end - ps->p < 2)
            return parse_fail(ps, "unterminated string");
        if (!ps->p[1] || !strchr("\"\\/bfnrtu", ps->p[1]))
            return parse_fail(ps, "invalid escape");
        if (ps->p[1] != 'u') {
            ps->p += 2;
            continue;
        }
        if (hex4(ps->p + 2, ps->end, &cu) < 0)
            return parse_fail(ps, "invalid \\u escape");
        if (cu >= 0xDC00 && cu <= 0xDFFF)
            return parse_fail(ps, "unpaired surrogate escape");
        if (cu >= 0xD800 && cu <= 0xDBFF) {
            if (ps->end - ps->p < 12 || ps->p[6] != '\\' || ps->p[7] != 'u' ||
                hex4(ps->p + 8, ps->end, &lo) < 0 || lo < 0xDC00 || lo > 0xDFFF)
                return parse_fail(ps, "unpaired surrogate escape");
            ps->p += 6;
        }
        js->has_nul |= cu == 0;
        ps->p += 6;
    }
    js->s = body;
    js->n = (size_t)(ps->p - body);
    ps->p++;
    return 0;
}

/* The code point of the escape at *pp (validated by scan_string); advances past it. */
static uint32_t unescape_one(const unsigned char **pp)
{
    const unsigned char *p = *pp;
    unsigned cu = 0, lo = 0xDC00;
    uint32_t c;

    switch (p[1]) {
    case 'b':
        c = '\b';
        break;
    case 'f':
        c = '\f';
        break;
    case 'n':
        c = '\n';
        break;
    case 'r':
        c = '\r';
        break;
    case 't':
        c = '\t';
        break;
    case 'u':
        hex4(p + 2, p + 6, &cu);
        if (cu >= 0xD800 && cu <= 0xDBFF) {
            hex4(p + 8, p + 12, &lo);
            c = 0x10000 + ((cu - 0xD800) << 10) + (lo - 0xDC00);
            p += 6;
        } else {
            c = cu;
        }
        p += 4;
        break;
    default: /* " \ / */
        c = p[1];
    }
    *pp = p + 2;
    return c;
}

static size_t utf8_put(char *d, uint32_t c)
{
    if (c < 0x80) {
        d[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        d[0] = (char)(0xC0 | c >> 6);
        d[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        d[0] = (char)(0xE0 | c >> 12);
        d[1] = (char)(0x80 | (c >> 6 & 0x3F));
        d[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    d[0] = (char)(0xF0 | c >> 18);
    d[1] = (char)(0x80 | (c >> 12 & 0x3F));
    d[2] = (char)(0x80 | (c >> 6 & 0x3F));
    d[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

/* Copy the token's text, unescaped, into the arena with a NUL; its offset and byte
 * length (which may count U+0000) in *off and *n. */
static void arena_put(struct parse *ps, const struct jstr *js, uint32_t *off, uint32_t *n)
{
    char *d = ps->arena + ps->t->arena_len;
    const unsigned char *r = js->s, *q = js->s + js->n;
    size_t len = 0;

    if (!js->escaped) {
        memcpy(d, r, js->n);
        len = js->n;
    } else {
        while (r < q) {
            const unsigned char *bs = memchr(r, '\\', (size_t)(q - r));
            size_t run = (size_t)((bs ? bs : q) - r);
            memcpy(d + len, r, run);
            len += run;
            r += run;
            if (bs)
                len += utf8_put(d + len, unescape_one(&r));
        }
    }
    d[len] = '\0';
    *off = (uint32_t)ps->t->arena_len;
    *n = (uint32_t)len;
    ps->t->arena_len += len + 1;
}

static struct jtape_node *node_add(struct parse *ps, enum jtape_type type)
{
    struct jtape *t = ps->t;
    if (t->count >= ps->max_values) {
        ps->too_many = 1;
        parse_fail(ps, "more than %zu JSON values", ps->max_values);
        return NULL;
    }
    if (t->count == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 64;
        if (ncap > ps->max_values)
            ncap = ps->max_values;
        struct jtape_node *n = reallocarray(t->n, ncap, sizeof *n);
        if (!n) {
            parse_fail(ps, "out of memory");
            return NULL;
        }
        t->n = n;
        t->cap = ncap;
    }
    struct jtape_node *nd = &t->n[t->count];
    *nd = (struct jtape_node){.next = (uint32_t)t->count + 1, .key = JTAPE_NOKEY, .type = type};
    t->count++;
    return nd;
}

static int is_digit(const struct parse *ps)
{
    return ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9';
}

static int scan_number(struct parse *ps, struct jtape_node *nd)
{
    const unsigned char *s = ps->p;
    int is_int = 1;

    if (*ps->p == '-')
        ps->p++;
    if (!is_digit(ps))
        return parse_fail(ps, "invalid number");
    if (*ps->p == '0') {
        ps->p++;
        if (is_digit(ps))
            return parse_fail(ps, "number with a leading zero");
    }
    while (is_digit(ps))
        ps->p++;
    if (ps->p < ps->end && *ps->p == '.') {
        is_int = 0;
        ps->p++;
        if (!is_digit(ps))
            return parse_fail(ps, "invalid number fraction");
        while (is_digit(ps))
            ps->p++;
    }
    if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
        is_int = 0;
        ps->p++;
        if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-'))
            ps->p++;
        if (!is_digit(ps))
            return parse_fail(ps, "invalid number exponent");
        while (is_digit(ps))
            ps->p++;
    }
    struct jstr js = {.s = s, .n = (size_t)(ps->p - s)};
    arena_put(ps, &js, &nd->str, &nd->count);
    nd->is_int = (uint8_t)is_int;
    return 0;
}

/* A scalar at p, appended as a node (*out) whose key the caller sets. */
static int parse_scalar(struct parse *ps, struct jtape_node **out)
{
    static const char *const lits[] = {"true", "false", "null"};
    static const enum jtape_type lit_types[] = {JT_TRUE, JT_FALSE, JT_NULL};
    unsigned char c = *ps->p;
    struct jtape_node *nd;
    struct jstr js;

    if (c == '"') {
        if (scan_string(ps, &js) < 0 || !(nd = node_add(ps, JT_STRING)))
            return -1;
        arena_put(ps, &js, &nd->str, &nd->count);
        *out = nd;
        return 0;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        if (!(nd = node_add(ps, JT_NUMBER)))
            return -1;
        *out = nd;
        return scan_number(ps, nd);
    }
    for (size_t i = 0; i < 3; i++) {
        size_t n = strlen(lits[i]);
        if ((size_t)(ps->end - ps->p) >= n && memcmp(ps->p, lits[i], n) == 0) {
            ps->p += n;
            return (*out = node_add(ps, lit_types[i])) ? 0 : -1;
        }
    }
    if (c == 't' || c == 'f' || c == 'n')
        return parse_fail(ps, "invalid literal");
    return parse_fail(ps, c ? "unexpected character" : "NUL byte");
}

static int key_cmp(const void *a, const void *b, void *arena)
{
    const struct jkey *x = a, *y = b;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return memcmp((const char *)arena + x->off, (const char *)arena + y->off, x->len);
}

static int dup_fail(struct parse *ps, const struct jkey *k)
{
    /* Show the key, printable ASCII only, a '?' per other character, cut at 32. */
    const unsigned char *s = (const unsigned char *)ps->arena + k->off;
    char shown[36];
    size_t j = 0, i = 0;
    while (i < k->len && j < 32) {
        size_t l = jtape_utf8_len(s + i, k->len - i);
        shown[j++] =
            (s[i] >= 0x20 && s[i] < 0x7F && s[i] != '"' && s[i] != '\\') ? (char)s[i] : '?';
        i += l ? l : 1;
    }
    shown[j] = '\0';
    return parse_fail(ps, "duplicate key \"%s\"%s", shown, i < k->len ? "..." : "");
}

/* The keys of object obj (closed) are unique, compared as unescaped bytes. */
static int check_dup_keys(struct parse *ps, size_t obj)
{
    const struct jtape_node *n = ps->t->n;
    size_t m = n[obj].count, k = 0;

    if (m < 2)
        return 0;
    if (m > ps->sortcap) {
        struct jkey *s = reallocarray(ps->sort == ps->sort_local ? NULL : ps->sort, m, sizeof *s);
        if (!s)
            return parse_fail(ps, "out of memory");
        ps->sort = s;
        ps->sortcap = m;
    }
    for (size_t i = obj + 1; k < m; k++, i = n[i].next)
        ps->sort[k] = (struct jkey){n[i].key, n[i].keylen};
    if (m <= JTAPE_PAIRWISE_KEYS) {
        for (size_t a = 1; a < m; a++)
            for (size_t b = 0; b < a; b++)
                if (!key_cmp(&ps->sort[a], &ps->sort[b], ps->arena))
                    return dup_fail(ps, &ps->sort[a]);
        return 0;
    }
    qsort_r(ps->sort, m, sizeof *ps->sort, key_cmp, ps->arena);
    for (size_t a = 1; a < m; a++)
        if (!key_cmp(&ps->sort[a - 1], &ps->sort[a], ps->arena))
            return dup_fail(ps, &ps->sort[a]);
    return 0;
}

enum parse_state { WANT_VALUE, WANT_KEY, AFTER_VALUE };

static int parse_document(struct parse *ps, int max_depth)
{
    struct jtape *t = ps->t;
    int depth = 0;
    enum parse_state st = WANT_VALUE;
    uint32_t key = JTAPE_NOKEY, keylen = 0;

    skip_ws(ps);
    if (ps->p == ps->end)
        return parse_fail(ps, "empty document");
    for (;;) {
        skip_ws(ps);
        if (st == AFTER_VALUE && depth == 0) {
            if (ps->p != ps->end)
                return parse_fail(ps, "trailing characters after the JSON value");
            return 0;
        }
        if (ps->p >= ps->end)
            return parse_fail(ps, "unexpected end of input");
        unsigned char c = *ps->p;
        struct jtape_node *top = depth ? &t->n[ps->stack[depth - 1]] : NULL;
        int in_obj = top && top->type == JT_OBJECT;
        if (st == WANT_KEY) {
            struct jstr js;
            if (c != '"')
                return parse_fail(ps, "expected a string key");
            if (scan_string(ps, &js) < 0)
                return -1;
            if (js.has_nul)
                return parse_fail(ps, "object key contains U+0000");
            arena_put(ps, &js, &key, &keylen);
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':')
                return parse_fail(ps, "expected ':'");
            ps->p++;
            st = WANT_VALUE;
            continue;
        }
        if (st == AFTER_VALUE) {
            ps->p++;
            if (c == ',') {
                st = in_obj ? WANT_KEY : WANT_VALUE;
            } else if (c == (in_obj ? '}' : ']')) {
                uint32_t idx = ps->stack[--depth];
                t->n[idx].next = (uint32_t)t->count;
                if (in_obj && check_dup_keys(ps, idx) < 0)
                    return -1;
            } else {
                ps->p--;
                return parse_fail(ps, "expected ',' or '%c'", in_obj ? '}' : ']');
            }
            continue;
        }
        struct jtape_node *nd = NULL;
        int open = c == '{' || c == '[';
        if (open) {
            if (depth >= max_depth)
                return parse_fail(ps, "nesting deeper than %d", max_depth);
            if (!(nd = node_add(ps, c == '{' ? JT_OBJECT : JT_ARRAY)))
                return -1;
            ps->p++;
        } else if (parse_scalar(ps, &nd) < 0) {
            return -1;
        }
        if (top) {
            /* node_add may have moved the array: find the parent again */
            t->n[ps->stack[depth - 1]].count++;
            if (in_obj) {
                nd->key = key;
                nd->keylen = keylen;
            }
        }
        st = AFTER_VALUE;
        if (open) {
            ps->stack[depth++] = (uint32_t)(nd - t->n);
            skip_ws(ps);
            if (ps->p < ps->end && *ps->p == (c == '{' ? '}' : ']')) {
                ps->p++;
                depth--;
            } else {
                st = c == '{' ? WANT_KEY : WANT_VALUE;
            }
        }
    }
}

void jtape_set_max_values(size_t n)
{
    __atomic_store_n(&max_values_limit, n ? n : JTAPE_MAX_VALUES_DEFAULT, __ATOMIC_RELAXED);
}

size_t jtape_max_values(void)
{
    return __atomic_load_n(&max_values_limit, __ATOMIC_RELAXED);
}

int jtape_parse(struct jtape *t, const char *text, size_t len, int max_depth, char *errstr,
                size_t errsz)
{
    return jtape_parse_max(t, text, len, max_depth, jtape_max_values(), errstr, errsz);
}

int jtape_parse_max(struct jtape *t, const char *text, size_t len, int max_depth,
                    size_t max_values, char *errstr, size_t errsz)
{
    struct parse ps = {.t = t, .errstr = errstr, .errsz = errsz};
    uint32_t stack_local[64];
    size_t guess;
    int rc = -1;

    memset(t, 0, sizeof *t);
    if (errstr && errsz)
        errstr[0] = '\0';
    if (!text || len > INT_MAX - 1) {
        snprintf(errstr, errsz, "document missing or larger than 2 GiB");
        return -1;
    }
    ps.start = ps.p = (const unsigned char *)text;
    ps.end = ps.start + len;
    /* node indexes are uint32_t */
    ps.max_values = max_values && max_values < UINT32_MAX ? max_values : UINT32_MAX - 1;
    if (max_depth <= 0)
        max_depth = 64;
    if (max_depth > JSON_PARSE_DEPTH_MAX)
        max_depth = JSON_PARSE_DEPTH_MAX;
    ps.stack = stack_local;
    if ((size_t)max_depth > sizeof stack_local / sizeof stack_local[0] &&
        !(ps.stack = calloc((size_t)max_depth, sizeof *ps.stack))) {
        snprintf(errstr, errsz, "out of memory");
        return -1;
    }
    ps.sort = ps.sort_local;
    ps.sortcap = JTAPE_SORT_LOCAL;
    guess = len / JTAPE_BYTES_PER_VALUE + JTAPE_NODES_MIN;
    if (guess > ps.max_values)
        guess = ps.max_values;
    if (!(t->arena = ps.arena = arena_get(len + 1, &t->arena_cap)) ||
        !(t->n = nodes_get(guess, ps.max_values, &t->cap))) {
        snprintf(errstr, errsz, "out of memory");
        goto out;
    }
    rc = parse_document(&ps, max_depth);
    if (rc < 0 && ps.too_many)
        rc = JTAPE_ETOOMANY;
out:
    if (ps.stack != stack_local)
        free(ps.stack);
    if (ps.sort != ps.sort_local)
        free(ps.sort);
    if (rc < 0)
        jtape_release(t);
    return rc;
}

void jtape_release(struct jtape *t)
{
    if (!t)
        return;
    tape_keep(t);
    memset(t, 0, sizeof *t);
}

/* ---- getters --------------------------------------------------------------------- */

size_t jtape_member(const struct jtape *t, size_t obj, const char *key)
{
    if (!key || obj >= t->count || t->n[obj].type != JT_OBJECT)
        return 0;
    size_t klen = strlen(key);
    const struct jtape_node *n = t->n;
    for (size_t i = obj + 1, k = 0; k < n[obj].count; k++, i = n[i].next)
        if (n[i].keylen == klen && memcmp(t->arena + n[i].key, key, klen) == 0)
            return i;
    return 0;
}

/* Member lookup with the json.h statuses: WRONG_TYPE on a non-object, MISSING when
 * absent or null. */
static enum jget_status member(const struct jtape *t, size_t obj, const char *key, size_t *i)
{
    if (obj >= t->count || t->n[obj].type != JT_OBJECT)
        return JGET_WRONG_TYPE;
    *i = jtape_member(t, obj, key);
    return *i && t->n[*i].type != JT_NULL ? JGET_OK : JGET_MISSING;
}

enum jget_status jtape_val_str(const struct jtape *t, size_t i, const char **out)
{
    if (i >= t->count || t->n[i].type == JT_NULL)
        return JGET_MISSING;
    if (t->n[i].type != JT_STRING)
        return JGET_WRONG_TYPE;
    const char *s = t->arena + t->n[i].str;
    if (strlen(s) != t->n[i].count)
        return JGET_RANGE;
    *out = s;
    return JGET_OK;
}

enum jget_status jtape_val_int64(const struct jtape *t, size_t i, int64_t min, int64_t max,
                                 int64_t *out)
{
    int64_t v;

    if (i >= t->count || t->n[i].type == JT_NULL)
        return JGET_MISSING;
    if (t->n[i].type != JT_NUMBER || !t->n[i].is_int)
        return JGET_WRONG_TYPE;
    if (jtape_dec_int64(t->arena + t->n[i].str, t->n[i].count, &v) != JGET_OK || v < min || v > max)
        return JGET_RANGE;
    *out = v;
    return JGET_OK;
}

enum jget_status jtape_val_int64_lenient(const struct jtape *t, size_t i, int64_t min, int64_t max,
                                         int64_t *out)
{
    int64_t v;
    enum jget_status st;

    if (i >= t->count || t->n[i].type != JT_STRING)
        return jtape_val_int64(t, i, min, max, out);
    st = jtape_dec_int64(t->arena + t->n[i].str, t->n[i].count, &v);
    if (st != JGET_OK)
        return st;
    if (v < min || v > max)
        return JGET_RANGE;
    *out = v;
    return JGET_OK;
}

enum jget_status jtape_get_str(const struct jtape *t, size_t obj, const char *key, const char **out)
{
    size_t i;
    enum jget_status st = member(t, obj, key, &i);
    return st != JGET_OK ? st : jtape_val_str(t, i, out);
}

enum jget_status jtape_get_strn(const struct jtape *t, size_t obj, const char *key,
                                const char **out, size_t *len)
{
    size_t i;
    enum jget_status st = member(t, obj, key, &i);
    if (st != JGET_OK)
        return st;
    if (t->n[i].type != JT_STRING)
        return JGET_WRONG_TYPE;
    *out = t->arena + t->n[i].str;
    if (len)
        *len = t->n[i].count;
    return JGET_OK;
}

enum jget_status jtape_get_int64(const struct jtape *t, size_t obj, const char *key, int64_t min,
                                 int64_t max, int64_t *out)
{
    size_t i;
    enum jget_status st = member(t, obj, key, &i);
    return st != JGET_OK ? st : jtape_val_int64(t, i, min, max, out);
}

enum jget_status jtape_get_int64_lenient(const struct jtape *t, size_t obj, const char *key,
                                         int64_t min, int64_t max, int64_t *out)
{
    size_t i;
    enum jget_status st = member(t, obj, key, &i);
    return st != JGET_OK ? st : jtape_val_int64_lenient(t, i, min, max, out);
}

enum jget_status jtape_get_bool(const struct jtape *t, size_t obj, const char *key, int *out)
{
    size_t i;
    enum jget_status st = member(t, obj, key, &i);
    if (st != JGET_OK)
        return st;
    if (t->n[i].type != JT_TRUE && t->n[i].type != JT_FALSE)
        return JGET_WRONG_TYPE;
    *out = t->n[i].type == JT_TRUE;
    return JGET_OK;
}

static enum jget_status get_typed(const struct jtape *t, size_t obj, const char *key,
                                  enum jtape_type type, size_t *out)
{
    size_t i;
    enum jget_status st = member(t, obj, key, &i);
    if (st != JGET_OK)
        return st;
    if (t->n[i].type != type)
        return JGET_WRONG_TYPE;
    *out = i;
    return JGET_OK;
}

enum jget_status jtape_get_obj(const struct jtape *t, size_t obj, const char *key, size_t *out)
{
    return get_typed(t, obj, key, JT_OBJECT, out);
}

enum jget_status jtape_get_array(const struct jtape *t, size_t obj, const char *key, size_t *out)
{
    return get_typed(t, obj, key, JT_ARRAY, out);
}

static locale_t c_numeric;
static pthread_once_t c_numeric_once = PTHREAD_ONCE_INIT;

static void c_numeric_init(void)
{
    c_numeric = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
}

double jtape_val_double(const struct jtape *t, size_t i)
{
    if (i >= t->count || t->n[i].type != JT_NUMBER)
        return 0;
    const char *s = t->arena + t->n[i].str;
    pthread_once(&c_numeric_once, c_numeric_init);
    return c_numeric ? strtod_l(s, NULL, c_numeric) : strtod(s, NULL);
}
