/* json.c - strict parsing, typed getters and the JSON builder.
 *
 * Strict parsing is two passes over the text. Pass one (scan_*) is our own RFC 8259
 * validator: it is the authority on what is accepted, because json-c's tokener, even in
 * strict mode, lets through duplicate keys, overlong and surrogate UTF-8, raw control
 * characters, "1.", NaN, and saturates integers beyond 64 bits. The scanner keeps the
 * keys of each open object on a stack (a run per object, popped when it closes) and
 * sorts a run on close to find duplicates: O(n log n), no hash to flood, memory bounded
 * by the number of keys in the text. Pass two is json-c's tokener, which builds the tree
 * from text already known to be valid. Integer literals outside int64 are noted by
 * ordinal in pass one; afterwards the tree is walked in document order (json-c keeps
 * insertion order, and keys are unique) and those nodes are replaced by doubles that
 * carry the original text, which the integer getters report as JGET_RANGE.
 *
 * The builder tracks one state byte per depth: container kind, "an element was
 * written" (comma needed) and "a key is waiting for its value".
 */
#include "common/json.h"

#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *jget_status_str(enum jget_status st)
{
    switch (st) {
    case JGET_OK:
        return "ok";
    case JGET_MISSING:
        return "missing";
    case JGET_WRONG_TYPE:
        return "wrong type";
    case JGET_RANGE:
        return "out of range";
    }
    return "unknown";
}

const char *json_type_str(const struct json_object *obj)
{
    switch (json_object_get_type(obj)) {
    case json_type_object:
        return "object";
    case json_type_array:
        return "array";
    case json_type_string:
        return "string";
    case json_type_int:
    case json_type_double:
        return "number";
    case json_type_boolean:
        return "boolean";
    case json_type_null:
        break;
    }
    return "null";
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if s does not start one. Follows
 * Unicode table 3-7, so overlongs, surrogates and code points past U+10FFFF are 0. */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
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

/* ---- getters --------------------------------------------------------------------- */

static enum jget_status member(struct json_object *obj, const char *key, struct json_object **v)
{
    if (!obj || json_object_get_type(obj) != json_type_object)
        return JGET_WRONG_TYPE;
    if (!key || !json_object_object_get_ex(obj, key, v) || !*v)
        return JGET_MISSING;
    return JGET_OK;
}

/* Parses -?(0|[1-9][0-9]*) exactly; JGET_WRONG_TYPE for anything else, JGET_RANGE past
 * int64. */
static enum jget_status parse_dec_int64(const char *s, size_t n, int64_t *out)
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

enum jget_status json_val_str(struct json_object *v, const char **out)
{
    if (!v)
        return JGET_MISSING;
    if (json_object_get_type(v) != json_type_string)
        return JGET_WRONG_TYPE;
    const char *s = json_object_get_string(v);
    if (memchr(s, '\0', (size_t)json_object_get_string_len(v)))
        return JGET_RANGE;
    *out = s;
    return JGET_OK;
}

enum jget_status json_val_int64(struct json_object *v, int64_t min, int64_t max, int64_t *out)
{
    int64_t i;

    switch (json_object_get_type(v)) {
    case json_type_null:
        return JGET_MISSING;
    case json_type_int:
        i = json_object_get_int64(v);
        /* A positive value above INT64_MAX is held as uint64; get_int64 clamps it. */
        if (i == INT64_MAX && json_object_get_uint64(v) > (uint64_t)INT64_MAX)
            return JGET_RANGE;
        if (i < min || i > max)
            return JGET_RANGE;
        *out = i;
        return JGET_OK;
    case json_type_double: {
        /* Parsed doubles carry their source text; an integer literal here is one the
         * strict parser found beyond int64. */
        const char *t = json_object_get_userdata(v);
        if (t && *t && strspn(t, "-0123456789") == strlen(t))
            return JGET_RANGE;
        return JGET_WRONG_TYPE;
    }
    default:
        return JGET_WRONG_TYPE;
    }
}

enum jget_status json_val_int64_lenient(struct json_object *v, int64_t min, int64_t max,
                                        int64_t *out)
{
    int64_t i;
    enum jget_status st;

    if (json_object_get_type(v) != json_type_string)
        return json_val_int64(v, min, max, out);
    st = parse_dec_int64(json_object_get_string(v), (size_t)json_object_get_string_len(v), &i);
    if (st != JGET_OK)
        return st;
    if (i < min || i > max)
        return JGET_RANGE;
    *out = i;
    return JGET_OK;
}

enum jget_status json_get_str(struct json_object *obj, const char *key, const char **out)
{
    struct json_object *v;
    enum jget_status st = member(obj, key, &v);
    return st != JGET_OK ? st : json_val_str(v, out);
}

enum jget_status json_get_strn(struct json_object *obj, const char *key, const char **out,
                               size_t *len)
{
    struct json_object *v;
    enum jget_status st = member(obj, key, &v);
    if (st != JGET_OK)
        return st;
    if (json_object_get_type(v) != json_type_string)
        return JGET_WRONG_TYPE;
    *out = json_object_get_string(v);
    if (len)
        *len = (size_t)json_object_get_string_len(v);
    return JGET_OK;
}

enum jget_status json_get_int64(struct json_object *obj, const char *key, int64_t min, int64_t max,
                                int64_t *out)
{
    struct json_object *v;
    enum jget_status st = member(obj, key, &v);
    return st != JGET_OK ? st : json_val_int64(v, min, max, out);
}

enum jget_status json_get_int64_lenient(struct json_object *obj, const char *key, int64_t min,
                                        int64_t max, int64_t *out)
{
    struct json_object *v;
    enum jget_status st = member(obj, key, &v);
    return st != JGET_OK ? st : json_val_int64_lenient(v, min, max, out);
}

enum jget_status json_get_bool(struct json_object *obj, const char *key, int *out)
{
    struct json_object *v;
    enum jget_status st = member(obj, key, &v);
    if (st != JGET_OK)
        return st;
    if (json_object_get_type(v) != json_type_boolean)
        return JGET_WRONG_TYPE;
    *out = json_object_get_boolean(v) ? 1 : 0;
    return JGET_OK;
}

static enum jget_status get_typed(struct json_object *obj, const char *key, enum json_type t,
                                  struct json_object **out)
{
    struct json_object *v;
    enum jget_status st = member(obj, key, &v);
    if (st != JGET_OK)
        return st;
    if (json_object_get_type(v) != t)
        return JGET_WRONG_TYPE;
    *out = v;
    return JGET_OK;
}

enum jget_status json_get_obj(struct json_object *obj, const char *key, struct json_object **out)
{
    return get_typed(obj, key, json_type_object, out);
}

enum jget_status json_get_array(struct json_object *obj, const char *key, struct json_object **out)
{
    return get_typed(obj, key, json_type_array, out);
}

/* ---- strict parser: pass one, the scanner ---------------------------------------- */

struct jkey {
    const unsigned char *s; /* raw key body between the quotes, escapes still in */
    size_t n;
};

struct bigint {
    size_t ordinal; /* among the document's integer literals, in text order */
    size_t off, len;
};

struct frame {
    int is_obj;
    size_t key_base; /* first key of this object on the key stack */
};

struct scan {
    const unsigned char *start, *p, *end;
    struct jkey *keys;
    size_t nkeys, capkeys;
    struct bigint *big;
    size_t nbig, capbig;
    size_t nints;
    char *errstr;
    size_t errsz;
};

__attribute__((format(printf, 2, 3))) static int scan_fail(struct scan *sc, const char *fmt, ...)
{
    char msg[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (sc->errstr && sc->errsz)
        snprintf(sc->errstr, sc->errsz, "%s at byte %zu", msg, (size_t)(sc->p - sc->start));
    return -1;
}

static int grow(void **arr, size_t *cap, size_t need, size_t elsz)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 16;
    void *n = reallocarray(*arr, ncap, elsz);
    if (!n)
        return -1;
    *arr = n;
    *cap = ncap;
    return 0;
}

static void skip_ws(struct scan *sc)
{
    while (sc->p < sc->end && (*sc->p == ' ' || *sc->p == '\t' || *sc->p == '\n' || *sc->p == '\r'))
        sc->p++;
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

/* At the opening quote. Validates escapes and UTF-8; a key is pushed on the key stack. */
static int scan_string(struct scan *sc, int is_key)
{
    const unsigned char *body = ++sc->p;
    int has_nul = 0;
    unsigned cu, lo;

    for (;;) {
        if (sc->p >= sc->end)
            return scan_fail(sc, "unterminated string");
        unsigned char c = *sc->p;
        if (c == '"')
            break;
        if (c < 0x20)
            return scan_fail(sc, c ? "raw control character in string" : "NUL byte in string");
        if (c >= 0x80) {
            size_t l = utf8_seq_len(sc->p, (size_t)(sc->end - sc->p));
            if (!l)
                return scan_fail(sc, "invalid UTF-8");
            sc->p += l;
            continue;
        }
        if (c != '\\') {
            sc->p++;
            continue;
        }
        if (sc->end - sc->p < 2)
            return scan_fail(sc, "unterminated string");
        if (!sc->p[1] || !strchr("\"\\/bfnrtu", sc->p[1]))
            return scan_fail(sc, "invalid escape");
        if (sc->p[1] != 'u') {
            sc->p += 2;
            continue;
        }
        if (hex4(sc->p + 2, sc->end, &cu) < 0)
            return scan_fail(sc, "invalid \\u escape");
        if (cu >= 0xDC00 && cu <= 0xDFFF)
            return scan_fail(sc, "unpaired surrogate escape");
        if (cu >= 0xD800 && cu <= 0xDBFF) {
            if (sc->end - sc->p < 12 || sc->p[6] != '\\' || sc->p[7] != 'u' ||
                hex4(sc->p + 8, sc->end, &lo) < 0 || lo < 0xDC00 || lo > 0xDFFF)
                return scan_fail(sc, "unpaired surrogate escape");
            sc->p += 6;
        }
        has_nul |= cu == 0;
        sc->p += 6;
    }
    if (is_key) {
        if (has_nul)
            return scan_fail(sc, "object key contains U+0000");
        if (grow((void **)&sc->keys, &sc->capkeys, sc->nkeys + 1, sizeof *sc->keys) < 0)
            return scan_fail(sc, "out of memory");
        sc->keys[sc->nkeys].s = body;
        sc->keys[sc->nkeys].n = (size_t)(sc->p - body);
        sc->nkeys++;
    }
    sc->p++;
    return 0;
}

static int is_digit(const struct scan *sc)
{
    return sc->p < sc->end && *sc->p >= '0' && *sc->p <= '9';
}

static int scan_number(struct scan *sc)
{
    const unsigned char *s = sc->p, *digits;
    int is_int = 1;

    if (*sc->p == '-')
        sc->p++;
    digits = sc->p;
    if (!is_digit(sc))
        return scan_fail(sc, "invalid number");
    if (*sc->p == '0') {
        sc->p++;
        if (is_digit(sc))
            return scan_fail(sc, "number with a leading zero");
    }
    while (is_digit(sc))
        sc->p++;
    if (sc->p < sc->end && *sc->p == '.') {
        is_int = 0;
        sc->p++;
        if (!is_digit(sc))
            return scan_fail(sc, "invalid number fraction");
        while (is_digit(sc))
            sc->p++;
    }
    if (sc->p < sc->end && (*sc->p == 'e' || *sc->p == 'E')) {
        is_int = 0;
        sc->p++;
        if (sc->p < sc->end && (*sc->p == '+' || *sc->p == '-'))
            sc->p++;
        if (!is_digit(sc))
            return scan_fail(sc, "invalid number exponent");
        while (is_digit(sc))
            sc->p++;
    }
    if (!is_int)
        return 0;
    size_t nd = (size_t)(sc->p - digits);
    const char *lim = s < digits ? "9223372036854775808" : "9223372036854775807";
    if (nd > 19 || (nd == 19 && memcmp(digits, lim, 19) > 0)) {
        if (grow((void **)&sc->big, &sc->capbig, sc->nbig + 1, sizeof *sc->big) < 0)
            return scan_fail(sc, "out of memory");
        sc->big[sc->nbig++] =
            (struct bigint){sc->nints, (size_t)(s - sc->start), (size_t)(sc->p - s)};
    }
    sc->nints++;
    return 0;
}

static int scan_literal(struct scan *sc)
{
    static const char *const lits[] = {"true", "false", "null"};
    for (size_t i = 0; i < 3; i++) {
        size_t n = strlen(lits[i]);
        if ((size_t)(sc->end - sc->p) >= n && memcmp(sc->p, lits[i], n) == 0) {
            sc->p += n;
            return 0;
        }
    }
    return scan_fail(sc, "invalid literal");
}

/* Next code point of a raw key body already validated by scan_string. */
static uint32_t key_next(const unsigned char **pp)
{
    const unsigned char *p = *pp;
    uint32_t c;
    unsigned cu = 0, lo = 0xDC00;

    if (*p == '\\') {
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
    size_t l = utf8_seq_len(p, 4); /* validated: the sequence is complete */
    c = l == 1 ? p[0] : p[0] & (0xFF >> (l + 1));
    for (size_t i = 1; i < l; i++)
        c = c << 6 | (p[i] & 0x3F);
    *pp = p + l;
    return c;
}

static int key_cmp(const void *a, const void *b)
{
    const struct jkey *x = a, *y = b;
    const unsigned char *p = x->s, *pe = x->s + x->n, *q = y->s, *qe = y->s + y->n;
    while (p < pe && q < qe) {
        uint32_t c = key_next(&p), d = key_next(&q);
        if (c != d)
            return c < d ? -1 : 1;
    }
    return (p < pe) - (q < qe);
}

static int check_dup_keys(struct scan *sc, size_t base)
{
    size_t n = sc->nkeys - base;
    struct jkey *k = sc->keys + base;

    if (n > 1)
        qsort(k, n, sizeof *k, key_cmp);
    for (size_t i = 1; i < n; i++) {
        if (key_cmp(&k[i - 1], &k[i]) != 0)
            continue;
        /* Show the decoded key, printable ASCII only, cut at 32 characters. */
        char shown[36];
        size_t j = 0;
        const unsigned char *p = k[i].s, *pe = k[i].s + k[i].n;
        while (p < pe && j < 32) {
            uint32_t c = key_next(&p);
            shown[j++] = (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') ? (char)c : '?';
        }
        shown[j] = '\0';
        return scan_fail(sc, "duplicate key \"%s\"%s", shown, p < pe ? "..." : "");
    }
    sc->nkeys = base;
    return 0;
}

enum scan_state { WANT_VALUE, WANT_KEY, AFTER_VALUE };

static int scan_document(struct scan *sc, struct frame *fr, int max_depth)
{
    int depth = 0;
    enum scan_state st = WANT_VALUE;

    skip_ws(sc);
    if (sc->p == sc->end)
        return scan_fail(sc, "empty document");
    for (;;) {
        skip_ws(sc);
        if (st == AFTER_VALUE && depth == 0) {
            if (sc->p != sc->end)
                return scan_fail(sc, "trailing characters after the JSON value");
            return 0;
        }
        if (sc->p >= sc->end)
            return scan_fail(sc, "unexpected end of input");
        unsigned char c = *sc->p;
        if (st == WANT_KEY) {
            if (c != '"')
                return scan_fail(sc, "expected a string key");
            if (scan_string(sc, 1) < 0)
                return -1;
            skip_ws(sc);
            if (sc->p >= sc->end || *sc->p != ':')
                return scan_fail(sc, "expected ':'");
            sc->p++;
            st = WANT_VALUE;
        } else if (st == AFTER_VALUE) {
            struct frame *f = &fr[depth - 1];
            sc->p++;
            if (c == ',') {
                st = f->is_obj ? WANT_KEY : WANT_VALUE;
            } else if (c == (f->is_obj ? '}' : ']')) {
                if (f->is_obj && check_dup_keys(sc, f->key_base) < 0)
                    return -1;
                depth--;
            } else {
                sc->p--;
                return scan_fail(sc, "expected ',' or '%c'", f->is_obj ? '}' : ']');
            }
        } else if (c == '{' || c == '[') {
            if (depth >= max_depth)
                return scan_fail(sc, "nesting deeper than %d", max_depth);
            fr[depth] = (struct frame){c == '{', sc->nkeys};
            depth++;
            sc->p++;
            skip_ws(sc);
            if (sc->p < sc->end && *sc->p == (c == '{' ? '}' : ']')) {
                sc->p++;
                depth--;
                st = AFTER_VALUE;
            } else {
                st = c == '{' ? WANT_KEY : WANT_VALUE;
            }
        } else {
            int rc;
            if (c == '"')
                rc = scan_string(sc, 0);
            else if (c == '-' || (c >= '0' && c <= '9'))
                rc = scan_number(sc);
            else if (c == 't' || c == 'f' || c == 'n')
                rc = scan_literal(sc);
            else
                rc = scan_fail(sc, c ? "unexpected character" : "NUL byte");
            if (rc < 0)
                return -1;
            st = AFTER_VALUE;
        }
    }
}

/* ---- strict parser: pass two, json-c and the big-integer fix-up ------------------ */

struct fixup {
    const struct scan *sc;
    size_t ord, next; /* integer nodes seen; next entry of sc->big */
    int failed;
};

/* Replacement for integer node number fx->ord when pass one found it beyond int64. */
static struct json_object *fix_int(struct fixup *fx)
{
    size_t ord = fx->ord++;
    if (fx->next >= fx->sc->nbig || fx->sc->big[fx->next].ordinal != ord)
        return NULL;
    const struct bigint *b = &fx->sc->big[fx->next++];
    char *text = strndup((const char *)fx->sc->start + b->off, b->len);
    struct json_object *d = text ? json_object_new_double_s(strtod(text, NULL), text) : NULL;
    free(text);
    if (!d)
        fx->failed = 1;
    return d;
}

static void fix_walk(struct json_object *v, struct fixup *fx)
{
    struct json_object *r;

    if (json_object_is_type(v, json_type_object)) {
        for (struct lh_entry *e = json_object_get_object(v)->head; e && !fx->failed;
             e = lh_entry_next(e)) {
            struct json_object *c = (struct json_object *)lh_entry_v(e);
            if (json_object_is_type(c, json_type_int)) {
                if ((r = fix_int(fx)))
                    json_object_object_add(v, (const char *)lh_entry_k(e), r);
            } else {
                fix_walk(c, fx);
            }
        }
    } else if (json_object_is_type(v, json_type_array)) {
        size_t n = json_object_array_length(v);
        for (size_t i = 0; i < n && !fx->failed; i++) {
            struct json_object *c = json_object_array_get_idx(v, i);
            if (json_object_is_type(c, json_type_int)) {
                if ((r = fix_int(fx)))
                    json_object_array_put_idx(v, i, r);
            } else {
                fix_walk(c, fx);
            }
        }
    }
}

struct json_object *json_parse_strict(const char *text, size_t len, int max_depth, char *errstr,
                                      size_t errsz)
{
    struct scan sc = {.errstr = errstr, .errsz = errsz};
    struct frame *fr = NULL;
    struct json_tokener *tok = NULL;
    struct json_object *obj = NULL, *ret = NULL;

    if (errstr && errsz)
        errstr[0] = '\0';
    if (!text || len > INT_MAX - 1) {
        snprintf(errstr, errsz, "document missing or larger than 2 GiB");
        goto out;
    }
    sc.start = sc.p = (const unsigned char *)text;
    sc.end = sc.start + len;
    if (max_depth <= 0)
        max_depth = 64;
    if (max_depth > JSON_PARSE_DEPTH_MAX)
        max_depth = JSON_PARSE_DEPTH_MAX;
    fr = calloc((size_t)max_depth, sizeof *fr);
    if (!fr) {
        snprintf(errstr, errsz, "out of memory");
        goto out;
    }
    if (scan_document(&sc, fr, max_depth) < 0)
        goto out;

    /* json-c counts the top level as one depth unit. */
    tok = json_tokener_new_ex(max_depth + 1);
    if (!tok) {
        snprintf(errstr, errsz, "out of memory");
        goto out;
    }
#ifdef JSON_TOKENER_VALIDATE_UTF8 /* json-c >= 0.15; the scanner has validated anyway */
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
#else
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
#endif
    obj = json_tokener_parse_ex(tok, text, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    if (!obj && jerr == json_tokener_continue) {
        /* A top-level number ends only at end of input; json-c needs the NUL to see it. */
        obj = json_tokener_parse_ex(tok, "", 1);
        jerr = json_tokener_get_error(tok);
    } else if (obj) {
        size_t end = json_tokener_get_parse_end(tok);
        sc.p = sc.start + end;
        skip_ws(&sc);
        if (sc.p != sc.end) {
            scan_fail(&sc, "trailing characters after the JSON value");
            goto out;
        }
    }
    if (jerr != json_tokener_success) {
        snprintf(errstr, errsz, "json-c rejected the document: %s", json_tokener_error_desc(jerr));
        goto out;
    }
    if (sc.nbig) {
        struct fixup fx = {.sc = &sc};
        if (json_object_is_type(obj, json_type_int)) {
            struct json_object *r = fix_int(&fx);
            if (r) {
                json_object_put(obj);
                obj = r;
            }
        } else {
            fix_walk(obj, &fx);
        }
        if (fx.failed || fx.next != sc.nbig) {
            snprintf(errstr, errsz, "%s", fx.failed ? "out of memory" : "integer fix-up lost");
            goto out;
        }
    }
    if (!obj) {
        snprintf(errstr, errsz, "document is null");
        goto out;
    }
    ret = obj;
    obj = NULL;
out:
    json_object_put(obj);
    if (tok)
        json_tokener_free(tok);
    free(fr);
    free(sc.keys);
    free(sc.big);
    return ret;
}

/* ---- builder --------------------------------------------------------------------- */

enum { JB_OBJ = 1, JB_HAS = 2, JB_KEY = 4 };

void jbuf_init(struct jbuf *jb, size_t max)
{
    memset(jb, 0, sizeof *jb);
    jb->max = max ? max : JBUF_DEFAULT_MAX;
}

void jbuf_release(struct jbuf *jb)
{
    size_t max = jb->max;
    free(jb->buf);
    jbuf_init(jb, max);
}

void jbuf_reset(struct jbuf *jb)
{
    jb->len = 0;
    jb->err = 0;
    jb->depth = 0;
    memset(jb->state, 0, sizeof jb->state);
    if (jb->buf)
        jb->buf[0] = '\0';
}

static void fail(struct jbuf *jb)
{
    jb->err = -1;
}

static void put(struct jbuf *jb, const void *s, size_t n)
{
    if (jb->err)
        return;
    if (n > jb->max - jb->len) {
        fail(jb);
        return;
    }
    if (jb->len + n + 1 > jb->cap) {
        size_t ncap = jb->cap ? jb->cap : 256;
        while (ncap < jb->len + n + 1 && ncap <= jb->max && ncap <= SIZE_MAX / 2)
            ncap *= 2;
        if (ncap > jb->max + 1)
            ncap = jb->max + 1;
        char *nb = realloc(jb->buf, ncap);
        if (!nb) {
            fail(jb);
            return;
        }
        jb->buf = nb;
        jb->cap = ncap;
    }
    memcpy(jb->buf + jb->len, s, n);
    jb->len += n;
    jb->buf[jb->len] = '\0';
}

/* Structure bookkeeping before any value; returns -1 (latched) on misuse. */
static int begin_value(struct jbuf *jb)
{
    unsigned char *st = &jb->state[jb->depth];
    if (jb->err)
        return -1;
    if (jb->depth == 0) {
        if (*st & JB_HAS)
            goto misuse;
        *st |= JB_HAS;
        return 0;
    }
    if (*st & JB_OBJ) {
        if (!(*st & JB_KEY))
            goto misuse;
        *st &= (unsigned char)~JB_KEY;
        return 0;
    }
    if (*st & JB_HAS)
        put(jb, ",", 1);
    *st |= JB_HAS;
    return jb->err;
misuse:
    fail(jb);
    return -1;
}

static void open_container(struct jbuf *jb, int is_obj)
{
    if (begin_value(jb) < 0)
        return;
    if (jb->depth >= JBUF_MAX_DEPTH) {
        fail(jb);
        return;
    }
    jb->state[++jb->depth] = is_obj ? JB_OBJ : 0;
    put(jb, is_obj ? "{" : "[", 1);
}

static void close_container(struct jbuf *jb, int is_obj)
{
    if (jb->err)
        return;
    unsigned char st = jb->state[jb->depth];
    if (jb->depth == 0 || !(st & JB_OBJ) != !is_obj || (st & JB_KEY)) {
        fail(jb);
        return;
    }
    jb->state[jb->depth--] = 0;
    put(jb, is_obj ? "}" : "]", 1);
}

void jbuf_obj_open(struct jbuf *jb)
{
    open_container(jb, 1);
}

void jbuf_obj_close(struct jbuf *jb)
{
    close_container(jb, 1);
}

void jbuf_arr_open(struct jbuf *jb)
{
    open_container(jb, 0);
}

void jbuf_arr_close(struct jbuf *jb)
{
    close_container(jb, 0);
}

void jbuf_escape(struct jbuf *jb, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, run = 0;
    char esc[8];

    while (i < n && !jb->err) {
        unsigned char c = u[i];
        size_t l = 1;
        if (c >= 0x20 && c != '"' && c != '\\' &&
            (c < 0x80 || (l = utf8_seq_len(u + i, n - i)) != 0)) {
            i += l;
            continue;
        }
        put(jb, u + run, i - run);
        if (c >= 0x80) {
            put(jb, "\xEF\xBF\xBD", 3);
        } else {
            char sh = c == '"'    ? '"'
                      : c == '\\' ? '\\'
                      : c == '\b' ? 'b'
                      : c == '\f' ? 'f'
                      : c == '\n' ? 'n'
                      : c == '\r' ? 'r'
                      : c == '\t' ? 't'
                                  : 0;
            if (sh) {
                esc[0] = '\\';
                esc[1] = sh;
                put(jb, esc, 2);
            } else {
                snprintf(esc, sizeof esc, "\\u%04x", c);
                put(jb, esc, 6);
            }
        }
        run = ++i;
    }
    put(jb, u + run, i - run);
}

void jbuf_key(struct jbuf *jb, const char *key)
{
    unsigned char *st = &jb->state[jb->depth];
    if (jb->err)
        return;
    if (!key || !(*st & JB_OBJ) || (*st & JB_KEY)) {
        fail(jb);
        return;
    }
    if (*st & JB_HAS)
        put(jb, ",", 1);
    *st |= JB_HAS | JB_KEY;
    put(jb, "\"", 1);
    jbuf_escape(jb, key, strlen(key));
    put(jb, "\":", 2);
}

void jbuf_strn(struct jbuf *jb, const char *s, size_t n)
{
    if (!s) {
        jbuf_null(jb);
        return;
    }
    if (begin_value(jb) < 0)
        return;
    put(jb, "\"", 1);
    jbuf_escape(jb, s, n);
    put(jb, "\"", 1);
}

void jbuf_str(struct jbuf *jb, const char *s)
{
    jbuf_strn(jb, s, s ? strlen(s) : 0);
}

void jbuf_int(struct jbuf *jb, int64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%" PRId64, v);
    if (begin_value(jb) == 0)
        put(jb, tmp, (size_t)n);
}

void jbuf_bool(struct jbuf *jb, int v)
{
    if (begin_value(jb) == 0)
        put(jb, v ? "true" : "false", v ? 4 : 5);
}

void jbuf_null(struct jbuf *jb)
{
    if (begin_value(jb) == 0)
        put(jb, "null", 4);
}

void jbuf_raw(struct jbuf *jb, const char *json, size_t n)
{
    if (begin_value(jb) == 0)
        put(jb, json, n);
}

void jbuf_kv_str(struct jbuf *jb, const char *key, const char *s)
{
    jbuf_key(jb, key);
    jbuf_str(jb, s);
}

void jbuf_kv_int(struct jbuf *jb, const char *key, int64_t v)
{
    jbuf_key(jb, key);
    jbuf_int(jb, v);
}

void jbuf_kv_bool(struct jbuf *jb, const char *key, int v)
{
    jbuf_key(jb, key);
    jbuf_bool(jb, v);
}

const char *jbuf_cstr(struct jbuf *jb)
{
    if (jb->err)
        return NULL;
    return jb->buf ? jb->buf : "";
}
