/* json.c - strict parsing, typed getters and the JSON builder.
 *
 * Strict parsing is two passes over the text. Pass one (scan_*) is our own RFC 8259
 * validator: it is the authority on what is accepted, because json-c's tokener, even in
 * strict mode, lets through duplicate keys, overlong and surrogate UTF-8, raw control
 * characters, "1.", NaN, and saturates integers beyond 64 bits. The scanner keeps the
 * keys of each open object on a stack (a run per object, popped when it closes) and
 * sorts a run on close to find duplicates: O(n log n), no hash to flood, memory bounded
 * by the number of keys in the text. Pass two builds the json-c tree from text already
 * known to be valid, straight from the bytes (json_object_new_* and add_ex with
 * KEY_IS_NEW, since keys are known unique): json-c's own tokener costs several times
 * more per document (a locale switch per call, a character-at-a-time state machine, a
 * copy of every token into its print buffer) and the worker parses every API answer.
 * Integer literals beyond int64 become doubles that carry the original text, which the
 * integer getters report as JGET_RANGE.
 *
 * The builder tracks one state byte per depth: container kind, "an element was
 * written" (comma needed) and "a key is waiting for its value".
 */
#include "common/json.h"

#include <inttypes.h>
#include <limits.h>
#include <locale.h>
#include <pthread.h>
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

/* ---- strict parser ---------------------------------------------------------------- */

struct parse {
    const unsigned char *start, *p, *end;
    char *key, *tmp; /* scratch: the pending key; an unescaped string or a number's text */
    size_t keycap, tmpcap;
    char *errstr;
    size_t errsz;
};

/* A string token pass over: its body between the quotes, escapes still in. */
struct jstr {
    const unsigned char *s;
    size_t n;
    int escaped, has_nul;
};

__attribute__((format(printf, 2, 3))) static int parse_fail(struct parse *ps, const char *fmt,
                                                             ...)
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

static int reserve(struct parse *ps, char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : 256;
    while (ncap < need)
        ncap *= 2;
    char *n = realloc(*buf, ncap);
    if (!n)
        return parse_fail(ps, "out of memory");
    *buf = n;
    *cap = ncap;
    return 0;
}

static void skip_ws(struct parse *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
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
            size_t l = utf8_seq_len(ps->p, (size_t)(ps->end - ps->p));
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

/* The string's text, unescaped and NUL-terminated, into *buf; its byte length (which
 * may count U+0000) in *n. An escape never decodes to more bytes than it takes (\uXXXX:
 * at most 3, a surrogate pair 4 for 12), so the body's length bounds the result. */
static int unescape(struct parse *ps, const struct jstr *js, char **buf, size_t *cap, size_t *n)
{
    const unsigned char *r = js->s, *q = js->s + js->n;
    size_t len = 0;

    if (reserve(ps, buf, cap, js->n + 1) < 0)
        return -1;
    while (r < q) {
        const unsigned char *bs = js->escaped ? memchr(r, '\\', (size_t)(q - r)) : NULL;
        size_t run = (size_t)((bs ? bs : q) - r);
        memcpy(*buf + len, r, run);
        len += run;
        r += run;
        if (bs)
            len += utf8_put(*buf + len, unescape_one(&r));
    }
    (*buf)[len] = '\0';
    *n = len;
    return 0;
}

static int is_digit(const struct parse *ps)
{
    return ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9';
}

static locale_t c_numeric;
static pthread_once_t c_numeric_once = PTHREAD_ONCE_INIT;

static void c_numeric_init(void)
{
    c_numeric = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
}

/* A number: integers within int64 become json-c integers; any other number a double that
 * serialises as its original text (json_object_new_double_s), which is how the integer
 * getters tell an integer beyond int64 (JGET_RANGE) from a fraction. */
static int parse_number(struct parse *ps, struct json_object **out)
{
    const unsigned char *s = ps->p;
    int is_int = 1;
    int64_t i;

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
    size_t n = (size_t)(ps->p - s);
    if (is_int && parse_dec_int64((const char *)s, n, &i) == JGET_OK) {
        *out = json_object_new_int64(i);
    } else {
        if (reserve(ps, &ps->tmp, &ps->tmpcap, n + 1) < 0)
            return -1;
        memcpy(ps->tmp, s, n);
        ps->tmp[n] = '\0';
        pthread_once(&c_numeric_once, c_numeric_init);
        double d = c_numeric ? strtod_l(ps->tmp, NULL, c_numeric) : strtod(ps->tmp, NULL);
        *out = json_object_new_double_s(d, ps->tmp);
    }
    return *out ? 0 : parse_fail(ps, "out of memory");
}

/* A scalar value at p into *out (NULL for a JSON null). */
static int parse_scalar(struct parse *ps, struct json_object **out)
{
    static const char *const lits[] = {"true", "false", "null"};
    unsigned char c = *ps->p;
    struct jstr js;
    size_t n;

    if (c == '"') {
        if (scan_string(ps, &js) < 0)
            return -1;
        if (!js.escaped) {
            *out = json_object_new_string_len((const char *)js.s, (int)js.n);
        } else {
            if (unescape(ps, &js, &ps->tmp, &ps->tmpcap, &n) < 0)
                return -1;
            *out = json_object_new_string_len(ps->tmp, (int)n);
        }
        return *out ? 0 : parse_fail(ps, "out of memory");
    }
    if (c == '-' || (c >= '0' && c <= '9'))
        return parse_number(ps, out);
    for (size_t i = 0; i < 3; i++) {
        n = strlen(lits[i]);
        if ((size_t)(ps->end - ps->p) >= n && memcmp(ps->p, lits[i], n) == 0) {
            ps->p += n;
            *out = i < 2 ? json_object_new_boolean(i == 0) : NULL;
            return i < 2 && !*out ? parse_fail(ps, "out of memory") : 0;
        }
    }
    if (c == 't' || c == 'f' || c == 'n')
        return parse_fail(ps, "invalid literal");
    return parse_fail(ps, c ? "unexpected character" : "NUL byte");
}

/* A member key into ps->key, checked against the object's keys so far: compared after
 * unescaping, so "a" and "\u0061" collide. json-c's table hashes with a per-process
 * random seed, so colliding keys cannot be chosen from outside. */
static int parse_key(struct parse *ps, struct json_object *obj)
{
    const unsigned char *at = ps->p;
    struct jstr js;
    size_t n;

    if (scan_string(ps, &js) < 0)
        return -1;
    if (js.has_nul)
        return parse_fail(ps, "object key contains U+0000");
    if (unescape(ps, &js, &ps->key, &ps->keycap, &n) < 0)
        return -1;
    if (json_object_object_length(obj) && json_object_object_get_ex(obj, ps->key, NULL)) {
        /* Show the key, printable ASCII only, a '?' per other character, cut at 32. */
        char shown[36];
        size_t j = 0, i = 0;
        while (i < n && j < 32) {
            unsigned char c = (unsigned char)ps->key[i];
            size_t l = utf8_seq_len((const unsigned char *)ps->key + i, n - i);
            shown[j++] = (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') ? (char)c : '?';
            i += l ? l : 1;
        }
        shown[j] = '\0';
        ps->p = at;
        return parse_fail(ps, "duplicate key \"%s\"%s", shown, i < n ? "..." : "");
    }
    return 0;
}

enum parse_state { WANT_VALUE, WANT_KEY, AFTER_VALUE };

/* One pass: validate and build. stack holds the open containers (at most max_depth). A
 * container is attached to its parent when it opens, so *root owns everything built so
 * far and the caller's json_object_put() undoes a failure. */
static int parse_document(struct parse *ps, struct json_object **stack, int max_depth,
                          struct json_object **root)
{
    int depth = 0;
    enum parse_state st = WANT_VALUE;
    struct json_object *v = NULL;

    *root = NULL;
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
        struct json_object *top = depth ? stack[depth - 1] : NULL;
        int in_obj = json_object_is_type(top, json_type_object);
        if (st == WANT_KEY) {
            if (c != '"')
                return parse_fail(ps, "expected a string key");
            if (parse_key(ps, top) < 0)
                return -1;
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
                depth--;
            } else {
                ps->p--;
                return parse_fail(ps, "expected ',' or '%c'", in_obj ? '}' : ']');
            }
            continue;
        }
        int open = c == '{' || c == '[';
        if (open) {
            if (depth >= max_depth)
                return parse_fail(ps, "nesting deeper than %d", max_depth);
            if (!(v = c == '{' ? json_object_new_object() : json_object_new_array()))
                return parse_fail(ps, "out of memory");
            ps->p++;
        } else if (parse_scalar(ps, &v) < 0) {
            return -1;
        }
        if (!top) {
            *root = v;
        } else if (in_obj ? json_object_object_add_ex(top, ps->key, v, JSON_C_OBJECT_ADD_KEY_IS_NEW)
                          : json_object_array_add(top, v)) {
            json_object_put(v);
            return parse_fail(ps, "out of memory");
        }
        st = AFTER_VALUE;
        if (open) {
            stack[depth++] = v;
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

struct json_object *json_parse_strict(const char *text, size_t len, int max_depth, char *errstr,
                                      size_t errsz)
{
    struct parse ps = {.errstr = errstr, .errsz = errsz};
    struct json_object *stack_local[64], **stack = stack_local;
    struct json_object *root = NULL;

    if (errstr && errsz)
        errstr[0] = '\0';
    if (!text || len > INT_MAX - 1) {
        snprintf(errstr, errsz, "document missing or larger than 2 GiB");
        return NULL;
    }
    ps.start = ps.p = (const unsigned char *)text;
    ps.end = ps.start + len;
    if (max_depth <= 0)
        max_depth = 64;
    if (max_depth > JSON_PARSE_DEPTH_MAX)
        max_depth = JSON_PARSE_DEPTH_MAX;
    if ((size_t)max_depth > sizeof stack_local / sizeof stack_local[0] &&
        !(stack = calloc((size_t)max_depth, sizeof *stack))) {
        snprintf(errstr, errsz, "out of memory");
        return NULL;
    }
    if (parse_document(&ps, stack, max_depth, &root) < 0) {
        json_object_put(root);
        root = NULL;
    } else if (!root) {
        snprintf(errstr, errsz, "document is null");
    }
    if (stack != stack_local)
        free(stack);
    free(ps.key);
    free(ps.tmp);
    return root;
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
