/* fuzz_json.c - libFuzzer target for json_parse_strict and the jbuf builder.
 *
 * Properties checked on arbitrary bytes:
 *   - json_parse_strict never crashes, leaks or reads past len;
 *   - whatever our scanner accepts, json-c accepts too (a "json-c rejected" error means
 *     the two passes disagree, which would let json-c's leniency decide);
 *   - an accepted document re-serialised through the builder is strict JSON again, equal
 *     to the original tree, and serialising that copy gives the same text (fixed point).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"

#define FUZZ_DEPTH 64 /* = JBUF_MAX_DEPTH, so every accepted tree can be rebuilt */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void emit(struct jbuf *jb, struct json_object *v)
{
    switch (json_object_get_type(v)) {
    case json_type_null:
        jbuf_null(jb);
        break;
    case json_type_boolean:
        jbuf_bool(jb, json_object_get_boolean(v));
        break;
    case json_type_int:
        jbuf_int(jb, json_object_get_int64(v));
        break;
    case json_type_double: {
        /* Parsed doubles (and big integers) serialise as their original text. */
        const char *t = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
        jbuf_raw(jb, t, strlen(t));
        break;
    }
    case json_type_string:
        jbuf_strn(jb, json_object_get_string(v), (size_t)json_object_get_string_len(v));
        break;
    case json_type_array: {
        size_t n = json_object_array_length(v);
        jbuf_arr_open(jb);
        for (size_t i = 0; i < n; i++)
            emit(jb, json_object_array_get_idx(v, i));
        jbuf_arr_close(jb);
        break;
    }
    case json_type_object: {
        jbuf_obj_open(jb);
        json_object_object_foreach(v, key, val)
        {
            jbuf_key(jb, key);
            emit(jb, val);
        }
        jbuf_obj_close(jb);
        break;
    }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    struct jbuf a, b;
    struct json_object *orig, *copy;

    orig = json_parse_strict((const char *)data, size, FUZZ_DEPTH, err, sizeof err);
    if (!orig) {
        if (strncmp(err, "json-c rejected", 15) == 0 || strncmp(err, "integer fix-up", 14) == 0)
            abort();
        return 0;
    }

    jbuf_init(&a, 0);
    emit(&a, orig);
    const char *text = jbuf_cstr(&a);
    if (!text || a.depth != 0)
        abort();
    copy = json_parse_strict(text, a.len, FUZZ_DEPTH, err, sizeof err);
    if (!copy || !json_object_equal(orig, copy))
        abort();

    jbuf_init(&b, 0);
    emit(&b, copy);
    if (!jbuf_cstr(&b) || b.len != a.len || memcmp(a.buf, b.buf, a.len) != 0)
        abort();

    jbuf_release(&a);
    jbuf_release(&b);
    json_object_put(copy);
    json_object_put(orig);
    return 0;
}
