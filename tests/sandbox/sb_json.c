/* sb_json.c - the text writer of sb_json.h: json-c's escaping without json-c's trees, and
 * a json-c tree written in that writer's way (sb_json_tree): json-c's bytes, with about a
 * third fewer instructions than its serialiser (callgrind, a bench invoice).
 * The rules are in sb_json.h; tests/unit/sandbox/test_sb_json.c checks them against
 * json-c itself for every byte value.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/sandbox/sb_json.h"

void sb_json_init(struct sb_json *w)
{
    memset(w, 0, sizeof(*w));
}

void sb_json_release(struct sb_json *w)
{
    free(w->buf);
    sb_json_init(w);
}

/* Room for n more bytes and the terminating NUL at w->buf + w->len; NULL once w failed. */
static char *room(struct sb_json *w, size_t n)
{
    if (w->err)
        return NULL;
    if (w->len + n + 1 > w->cap) {
        size_t cap = w->cap ? w->cap : 4096; /* a batch read's answer without a realloc */
        while (cap < w->len + n + 1)
            cap *= 2;
        char *b = realloc(w->buf, cap);
        if (!b) {
            w->err = 1;
            return NULL;
        }
        w->buf = b;
        w->cap = cap;
    }
    return w->buf + w->len;
}

static void put(struct sb_json *w, const char *s, size_t n)
{
    char *p = room(w, n);
    if (!p)
        return;
    memcpy(p, s, n);
    w->len += n;
    w->buf[w->len] = '\0';
}

/* One byte (punctuation): the writer's most frequent call, so no memcpy. */
static void put_c(struct sb_json *w, char c)
{
    char *p = room(w, 1);
    if (!p)
        return;
    p[0] = c;
    p[1] = '\0';
    w->len++;
}

/* A comma before the next element of the current container, unless a key precedes it. */
static void element(struct sb_json *w)
{
    if (w->after_key) {
        w->after_key = 0;
        return;
    }
    if (w->has[w->depth])
        put_c(w, ',');
    w->has[w->depth] = 1;
}

size_t sb_json_escape(const char *s, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char e = c == '"'    ? '"'
                 : c == '\\' ? '\\'
                 : c == '\b' ? 'b'
                 : c == '\f' ? 'f'
                 : c == '\n' ? 'n'
                 : c == '\r' ? 'r'
                 : c == '\t' ? 't'
                             : 0;
        char tmp[6] = {'\\', e, 0, 0, 0, 0};
        size_t len = 2;
        if (!e && c >= 0x20) {
            tmp[0] = (char)c;
            len = 1;
        } else if (!e) {
            memcpy(tmp, "\\u00", 4);
            tmp[4] = hex[c >> 4];
            tmp[5] = hex[c & 0xf];
            len = 6;
        }
        if (out)
            memcpy(out + o, tmp, len);
        o += len;
    }
    return o;
}

/* Bytes json-c escapes: the control characters, '"' and '\\'. */
static int needs_escape(unsigned char c)
{
    return c < 0x20 || c == '"' || c == '\\';
}

/* n bytes of s quoted, then tail unless it is 0 (a key's ':'). Most strings (ids, dates,
 * names) need no escape: one scan finds that, and the string goes into the buffer in one
 * piece; only a string that needs one goes through sb_json_escape. */
static void quoted_n(struct sb_json *w, const char *s, size_t n, char tail)
{
    size_t i = 0;
    char *p;
    while (i < n && !needs_escape((unsigned char)s[i]))
        i++;
    if (i == n) {
        if (!(p = room(w, n + 3)))
            return;
        *p++ = '"';
        memcpy(p, s, n);
        p += n;
        *p++ = '"';
        if (tail)
            *p++ = tail;
        *p = '\0';
        w->len = (size_t)(p - w->buf);
        return;
    }
    size_t m = sb_json_escape(s, n, NULL);
    char small[256], *e = m <= sizeof(small) ? small : malloc(m);
    put_c(w, '"');
    if (!e)
        w->err = 1;
    else
        put(w, e, sb_json_escape(s, n, e));
    if (e != small)
        free(e);
    put_c(w, '"');
    if (tail)
        put_c(w, tail);
}

static void quoted(struct sb_json *w, const char *s, char tail)
{
    quoted_n(w, s, strlen(s), tail);
}

void sb_json_open(struct sb_json *w, char bracket)
{
    element(w);
    if (w->depth == SB_JSON_DEPTH) {
        w->err = 1;
        return;
    }
    put_c(w, bracket);
    w->has[++w->depth] = 0;
}

void sb_json_close(struct sb_json *w, char bracket)
{
    if (w->depth == 0 || w->after_key) {
        w->err = 1;
        return;
    }
    w->depth--;
    put_c(w, bracket);
}

void sb_json_key(struct sb_json *w, const char *key)
{
    element(w);
    quoted(w, key, ':');
    w->after_key = 1;
}

void sb_json_str(struct sb_json *w, const char *s)
{
    element(w);
    if (s)
        quoted(w, s, 0);
    else
        put(w, "null", 4);
}

size_t sb_json_fmt_int(char *buf, int64_t v)
{
    char tmp[SB_JSON_INT_MAX];
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    size_t n = 0, len = 0;
    do
        tmp[n++] = (char)('0' + u % 10);
    while ((u /= 10) > 0);
    if (v < 0)
        buf[len++] = '-';
    while (n > 0)
        buf[len++] = tmp[--n];
    buf[len] = '\0';
    return len;
}

void sb_json_int(struct sb_json *w, int64_t v)
{
    char b[SB_JSON_INT_MAX];
    size_t n = sb_json_fmt_int(b, v);
    element(w);
    put(w, b, n);
}

void sb_json_bool(struct sb_json *w, int v)
{
    element(w);
    put(w, v ? "true" : "false", v ? 4 : 5);
}

void sb_json_raw(struct sb_json *w, const char *text, size_t n)
{
    element(w);
    put(w, text, n);
}

void sb_json_kv_str(struct sb_json *w, const char *key, const char *s)
{
    sb_json_key(w, key);
    sb_json_str(w, s);
}

void sb_json_kv_int(struct sb_json *w, const char *key, int64_t v)
{
    sb_json_key(w, key);
    sb_json_int(w, v);
}

/* Numbers as json-c writes them: an int64 (or a uint64 above INT64_MAX) in decimal, a
 * double that keeps the text it was parsed or made from (json_object_new_double_s: its
 * userdata) as that text, any other double by json-c itself. */
static void tree_number(struct sb_json *w, struct json_object *o)
{
    const char *t;
    size_t n;
    if (json_object_is_type(o, json_type_int)) {
        int64_t v = json_object_get_int64(o);
        char b[SB_JSON_INT_MAX];
        if (v == INT64_MAX && json_object_get_uint64(o) > (uint64_t)INT64_MAX) {
            snprintf(b, sizeof(b), "%" PRIu64, json_object_get_uint64(o));
            sb_json_raw(w, b, strlen(b));
        } else {
            sb_json_int(w, v);
        }
        return;
    }
    if ((t = json_object_get_userdata(o)) != NULL) {
        sb_json_raw(w, t, strlen(t));
        return;
    }
    t = json_object_to_json_string_length(o, SB_JSON_C_FLAGS, &n);
    sb_json_raw(w, t, n);
}

void sb_json_tree(struct sb_json *w, struct json_object *o)
{
    switch (json_object_get_type(o)) {
    case json_type_null:
        sb_json_raw(w, "null", 4);
        return;
    case json_type_boolean:
        sb_json_bool(w, json_object_get_boolean(o));
        return;
    case json_type_string:
        element(w);
        quoted_n(w, json_object_get_string(o), (size_t)json_object_get_string_len(o), 0);
        return;
    case json_type_object:
        sb_json_open(w, '{');
        json_object_object_foreach(o, k, v)
        {
            sb_json_key(w, k);
            sb_json_tree(w, v);
        }
        sb_json_close(w, '}');
        return;
    case json_type_array:
        sb_json_open(w, '[');
        for (size_t i = 0, n = json_object_array_length(o); i < n; i++)
            sb_json_tree(w, json_object_array_get_idx(o, i));
        sb_json_close(w, ']');
        return;
    default:
        tree_number(w, o);
    }
}
