/* json.h - typed, non-coercing access to json-c values, a strict parser, and a JSON text
 * builder.
 *
 * Owns: nothing global. The getters borrow the json_object they read from; every
 * pointer they return (strings, child objects) is borrowed and lives as long as the
 * parent json_object. The builder owns its buffer until jbuf_release().
 *
 * Why: json-c's json_object_get_int()/get_string() coerce silently ("12abc" -> 12,
 * an object -> its text), and its tokener accepts duplicate keys (keeping the last),
 * overlong UTF-8, NaN, "1." and saturates huge integers. Kafka payloads and HTTP bodies
 * are untrusted, so json_parse_strict() refuses all of that, and every read here checks
 * the JSON type first and reports exactly what was wrong: the member is missing, has
 * the wrong type, or is out of range.
 *
 * Number rules (all getters): a JSON integer is a number literal without fraction or
 * exponent. Any literal with '.', 'e' or 'E' (even 5.0 or 1e2) is JGET_WRONG_TYPE for
 * the integer getters: ids and cents are integral and producers must send them so.
 * Integer literals beyond int64 are JGET_RANGE (the strict parser keeps them, as a
 * json-c double carrying the original text, so unknown huge fields never fail a parse).
 *
 * Thread-safety: functions are reentrant; a json_object or jbuf must not be shared
 * between threads without external locking.
 */
#ifndef HSQB_JSON_H
#define HSQB_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

enum jget_status {
    JGET_OK = 0,
    JGET_MISSING,    /* member absent (a JSON null counts as missing) */
    JGET_WRONG_TYPE, /* present with another JSON type (see the number rules above) */
    JGET_RANGE,      /* right type, value out of the allowed range or not representable */
};

/* A short English name for a status ("ok", "missing", "wrong type", "out of range"). */
const char *jget_status_str(enum jget_status st);

/* Name of a JSON type for messages: "object", "array", "string", "number", "boolean",
 * "null". obj may be NULL (-> "null"). */
const char *json_type_str(const struct json_object *obj);

/* Each getter reads member `key` of `obj` (obj must be a JSON object; if it is not, or is
 * NULL, the result is JGET_WRONG_TYPE; a NULL key is JGET_MISSING). On JGET_OK *out is
 * set; otherwise *out is untouched. */

/* String member; *out borrowed from obj. A string holding U+0000 (via \u0000) cannot be
 * a C string without silent truncation, so it is JGET_RANGE here; use json_get_strn. */
enum jget_status json_get_str(struct json_object *obj, const char *key, const char **out);
/* String member with its byte length (strings may contain NUL bytes via \u0000).
 * len may be NULL. */
enum jget_status json_get_strn(struct json_object *obj, const char *key, const char **out,
                               size_t *len);
/* Integer member. Accepts only JSON integers (no fractions, no strings); checks
 * min <= v <= max, else JGET_RANGE. Integers beyond int64 are JGET_RANGE. */
enum jget_status json_get_int64(struct json_object *obj, const char *key, int64_t min, int64_t max,
                                int64_t *out);
/* Integer given either as a JSON integer or as a string, as HubSpot ids arrive in both
 * forms. The string must match the JSON integer grammar exactly: -?(0|[1-9][0-9]*), no
 * sign '+', no spaces, no leading zeros ("007" would alias "7"); any other string is
 * JGET_WRONG_TYPE, a well-formed one beyond int64 or outside [min, max] is JGET_RANGE. */
enum jget_status json_get_int64_lenient(struct json_object *obj, const char *key, int64_t min,
                                        int64_t max, int64_t *out);
/* Boolean member: only JSON true/false (*out = 1 or 0). */
enum jget_status json_get_bool(struct json_object *obj, const char *key, int *out);
/* Object / array member; *out borrowed. */
enum jget_status json_get_obj(struct json_object *obj, const char *key, struct json_object **out);
enum jget_status json_get_array(struct json_object *obj, const char *key, struct json_object **out);

/* The same checks on a value itself (an array element, a top-level value). v may be NULL
 * (a JSON null), which is JGET_MISSING. */
enum jget_status json_val_str(struct json_object *v, const char **out);
enum jget_status json_val_int64(struct json_object *v, int64_t min, int64_t max, int64_t *out);
enum jget_status json_val_int64_lenient(struct json_object *v, int64_t min, int64_t max,
                                        int64_t *out);

/* Deepest nesting json_parse_strict accepts whatever max_depth says. */
#define JSON_PARSE_DEPTH_MAX 1000

/* Parse text of exactly len bytes (no NUL terminator needed) into a json_object, per
 * RFC 8259 and nothing more. Rejects, with a message naming the byte offset: invalid
 * UTF-8 (overlongs, surrogates, > U+10FFFF), unpaired \u surrogate escapes, raw control
 * characters and NUL bytes, trailing garbage after the value (whitespace is fine),
 * nesting deeper than max_depth containers ("[]" is depth 1, a scalar depth 0;
 * max_depth <= 0 means 64, larger than JSON_PARSE_DEPTH_MAX means that), duplicated keys
 * within one object (compared after unescaping, so "a" and "\u0061" collide), and keys
 * containing U+0000 (json-c would truncate them into silent duplicates).
 * Returns a new reference (caller frees with json_object_put) or NULL with errstr set.
 * errstr never echoes more than a short, sanitised piece of the input. */
struct json_object *json_parse_strict(const char *text, size_t len, int max_depth, char *errstr,
                                      size_t errsz);

/* The json-c tree of a parsed tape (common/jtape.h, borrowed), max_depth the one it was
 * parsed with: json_parse_strict() is jtape_parse() + this, for callers that need to tell
 * a refused parse (JTAPE_ETOOMANY) from a malformed one. A new reference, or NULL with
 * errstr set (a top-level null, out of memory). */
struct jtape;
struct json_object *json_from_tape(const struct jtape *t, int max_depth, char *errstr,
                                   size_t errsz);

/* ---- builder ---------------------------------------------------------------------
 * Appends JSON text to a growable buffer with a hard size cap. Any failure (allocation,
 * cap exceeded, misuse such as a value in an object without a key, a key outside an
 * object, a close that does not match, nesting beyond JBUF_MAX_DEPTH, or a second
 * top-level value) latches jb->err; later appends are no-ops; check once at the end.
 * Strings are escaped per RFC 8259: '"' and '\' escaped, \b \f \n \r \t short forms,
 * other control chars as \u00XX, and each byte that does not start a valid UTF-8
 * sequence is replaced by U+FFFD, so output is always valid UTF-8. '/' and DEL are kept.
 * Commas between members/elements are inserted automatically. */
#define JBUF_MAX_DEPTH   64
#define JBUF_DEFAULT_MAX (16u << 20)

struct jbuf {
    char *buf;
    size_t len, cap, max;
    int err;   /* 0 ok, -1 failed (ENOMEM, cap or misuse) */
    int depth; /* current nesting depth, 0 = top level */
    /* per depth: container kind and whether an element / a key was written (json.c) */
    unsigned char state[JBUF_MAX_DEPTH + 1];
};

/* max = hard cap on len in bytes, excluding the terminating NUL (0 = JBUF_DEFAULT_MAX). */
void jbuf_init(struct jbuf *jb, size_t max);
/* Latch jb->err from outside, when what a caller was about to write cannot be written
 * (e.g. a value it could not format): later appends are no-ops, jbuf_cstr() is NULL. */
void jbuf_fail(struct jbuf *jb);
/* Free the buffer; jb may be initialised again or reset and reused (same max). */
void jbuf_release(struct jbuf *jb);
/* Reset to empty (clearing err) without freeing the buffer. */
void jbuf_reset(struct jbuf *jb);

void jbuf_obj_open(struct jbuf *jb);
void jbuf_obj_close(struct jbuf *jb);
void jbuf_arr_open(struct jbuf *jb);
void jbuf_arr_close(struct jbuf *jb);
/* Write a member key inside an object; the next value call writes its value. NULL key
 * latches an error. */
void jbuf_key(struct jbuf *jb, const char *key);
void jbuf_str(struct jbuf *jb, const char *s);            /* s NULL -> null */
void jbuf_strn(struct jbuf *jb, const char *s, size_t n); /* n bytes, may hold NUL */
void jbuf_int(struct jbuf *jb, int64_t v);
void jbuf_bool(struct jbuf *jb, int v);
void jbuf_null(struct jbuf *jb);
/* Append pre-serialised JSON text as a value (caller guarantees validity). */
void jbuf_raw(struct jbuf *jb, const char *json, size_t n);
/* Money: int64 cents written as a JSON integer of cents (contract: *_cents fields). */

/* Convenience: key + value. */
void jbuf_kv_str(struct jbuf *jb, const char *key, const char *s);
void jbuf_kv_int(struct jbuf *jb, const char *key, int64_t v);
void jbuf_kv_bool(struct jbuf *jb, const char *key, int v);

/* NUL-terminated result ("" when nothing was written), borrowed until the next append or
 * release; NULL if jb->err. It does not check that every container was closed. */
const char *jbuf_cstr(struct jbuf *jb);

/* Escape n bytes as a JSON string body (without quotes) into jb, outside the structure
 * tracking (no comma, no value counted); used by log too. */
void jbuf_escape(struct jbuf *jb, const char *s, size_t n);

#endif
