/* json.c - strict parsing, typed getters and the JSON builder.
 *
 * Strict parsing is common/jtape.c's: our own RFC 8259 validator is the authority on
 * what is accepted, because json-c's tokener, even in strict mode, lets through duplicate
 * keys, overlong and surrogate UTF-8, raw control characters, "1.", NaN, and saturates
 * integers beyond 64 bits. json_parse_strict() turns the tape into a json-c tree in one
 * walk over its nodes (document order, keys known unique, so add_ex with KEY_IS_NEW),
 * which also avoids json-c's tokener and its cost per document (a locale switch per call,
 * a character-at-a-time state machine, a copy of every token). Integer literals beyond
 * int64 become doubles that carry the original text, which the integer getters report
 * as JGET_RANGE.
 *
 * The builder tracks one state byte per depth: container kind, "an element was
 * written" (comma needed) and "a key is waiting for its value".
 */
#include "common/json.h"
#include "common/jtape.h"

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

/* ---- getters --------------------------------------------------------------------- */

static enum jget_status member(struct json_object *obj, const char *key, struct json_object **v)
{
    if (!obj || json_object_get_type(obj) != json_type_object)
        return JGET_WRONG_TYPE;
    if (!key || !json_object_object_get_ex(obj, key, v) || !*v)
        return JGET_MISSING;
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
    st = jtape_dec_int64(json_object_get_string(v), (size_t)json_object_get_string_len(v), &i);
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

/* ---- strict parser: json-c trees from a tape --------------------------------------- */

/* Node i as a json-c value (NULL for a JSON null: *failed tells it from out of memory).
 * Integers within int64 become json-c integers; any other number a double that
 * serialises as its original text (json_object_new_double_s), which is how the integer
 * getters tell an integer beyond int64 (JGET_RANGE) from a fraction. */
static struct json_object *tape_value(const struct jtape *t, size_t i, int *failed)
{
    const struct jtape_node *nd = &t->n[i];
    const char *s = t->arena + nd->str;
    struct json_object *v = NULL;
    int64_t iv;

    switch ((enum jtape_type)nd->type) {
    case JT_NULL:
        return NULL;
    case JT_FALSE:
    case JT_TRUE:
        v = json_object_new_boolean(nd->type == JT_TRUE);
        break;
    case JT_STRING:
        v = json_object_new_string_len(s, (int)nd->count);
        break;
    case JT_NUMBER:
        if (nd->is_int && jtape_dec_int64(s, nd->count, &iv) == JGET_OK) {
            v = json_object_new_int64(iv);
        } else {
            v = json_object_new_double_s(jtape_val_double(t, i), s);
        }
        break;
    case JT_ARRAY:
        v = json_object_new_array_ext((int)(nd->count ? nd->count : 1));
        break;
    case JT_OBJECT:
        v = json_object_new_object();
        break;
    }
    if (!v)
        *failed = 1;
    return v;
}

struct json_object *json_parse_strict(const char *text, size_t len, int max_depth, char *errstr,
                                      size_t errsz)
{
    struct jtape t;
    struct json_object *root;

    if (jtape_parse(&t, text, len, max_depth, errstr, errsz) < 0)
        return NULL;
    root = json_from_tape(&t, max_depth, errstr, errsz);
    jtape_release(&t);
    return root;
}

struct json_object *json_from_tape(const struct jtape *t, int max_depth, char *errstr,
                                   size_t errsz)
{
    struct json_object *stack_local[64], **stack = stack_local, *root = NULL;
    uint32_t end_local[64], *end = end_local;
    int depth = 0, failed = 0;

    if (t->n[JTAPE_ROOT].type == JT_NULL) {
        snprintf(errstr, errsz, "document is null");
        goto out;
    }
    if (max_depth > 64 && (!(stack = calloc(JSON_PARSE_DEPTH_MAX, sizeof *stack)) ||
                           !(end = calloc(JSON_PARSE_DEPTH_MAX, sizeof *end)))) {
        failed = 1;
        goto out;
    }
    /* Nodes are in document order: each is a member or element of the innermost open
     * container whose subtree it is in, and is attached as soon as it is made, so root
     * owns everything built so far. */
    for (size_t i = 0; i < t->count && !failed; i++) {
        while (depth && i >= end[depth - 1])
            depth--;
        struct json_object *v = tape_value(t, i, &failed), *top = depth ? stack[depth - 1] : NULL;
        if (failed)
            break;
        if (!top)
            root = v;
        else if (json_object_is_type(top, json_type_object)
                     ? json_object_object_add_ex(top, t->arena + t->n[i].key, v,
                                                 JSON_C_OBJECT_ADD_KEY_IS_NEW)
                     : json_object_array_add(top, v)) {
            json_object_put(v);
            failed = 1;
        }
        if (t->n[i].type == JT_ARRAY || t->n[i].type == JT_OBJECT) {
            stack[depth] = v;
            end[depth++] = t->n[i].next;
        }
    }
out:
    if (failed) {
        json_object_put(root);
        root = NULL;
        snprintf(errstr, errsz, "out of memory");
    }
    if (stack != stack_local)
        free(stack);
    if (end != end_local)
        free(end);
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

void jbuf_fail(struct jbuf *jb)
{
    jb->err = -1;
}

/* A first buffer that holds what the worker writes in one go: a QBO document (2-4 KB),
 * a result, a log line. Starting at 256 cost four reallocations for a 3 KB body. */
#define JBUF_FIRST_CAP 4096

static void put(struct jbuf *jb, const void *s, size_t n)
{
    if (jb->err)
        return;
    if (n > jb->max - jb->len) {
        jbuf_fail(jb);
        return;
    }
    if (jb->len + n + 1 > jb->cap) {
        size_t ncap = jb->cap ? jb->cap : JBUF_FIRST_CAP;
        while (ncap < jb->len + n + 1 && ncap <= jb->max && ncap <= SIZE_MAX / 2)
            ncap *= 2;
        if (ncap > jb->max + 1)
            ncap = jb->max + 1;
        char *nb = realloc(jb->buf, ncap);
        if (!nb) {
            jbuf_fail(jb);
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
    jbuf_fail(jb);
    return -1;
}

static void open_container(struct jbuf *jb, int is_obj)
{
    if (begin_value(jb) < 0)
        return;
    if (jb->depth >= JBUF_MAX_DEPTH) {
        jbuf_fail(jb);
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
        jbuf_fail(jb);
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
            (c < 0x80 || (l = jtape_utf8_len(u + i, n - i)) != 0)) {
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
        jbuf_fail(jb);
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
