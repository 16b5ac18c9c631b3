/* sb_json.h - JSON answers written as text, byte for byte as json-c would write them.
 *
 * Owns: nothing global; a struct sb_json owns its buffer until sb_json_release() or
 * sb_resp_sb_json() takes it.
 *
 * Why: the sandbox's hot answers (HubSpot records, the request log) were json-c trees
 * built only to be serialised: a hash table per JSON object, most of the CPU of a read.
 * These answers are now written straight into one buffer, and a stored QBO transaction's
 * tree is turned into text the same way (sb_json_tree). The output must stay the bytes
 * sb_resp_json() produced (clients and tests compare them), so strings and keys are
 * escaped exactly as json-c does with JSON_C_TO_STRING_PLAIN | _NOSLASHESCAPE: '"', '\'
 * and the control characters \b \f \n \r \t in short form, other bytes below 0x20 as
 * \u00xx (lower-case hex), every other byte as it is (invalid UTF-8 included); no spaces.
 * common/json.h's jbuf differs on purpose (it replaces invalid UTF-8), hence this writer.
 *
 * Commas are inserted automatically; nesting is at most SB_JSON_DEPTH. Any failure (out
 * of memory, misuse) latches err and later calls do nothing.
 * Thread-safety: one writer per thread.
 */
#ifndef HSQB_SANDBOX_SB_JSON_H
#define HSQB_SANDBOX_SB_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#define SB_JSON_DEPTH 16

struct sb_json {
    char *buf;
    size_t len, cap;
    int err, depth;
    unsigned char has[SB_JSON_DEPTH + 1]; /* per depth: an element written (comma next) */
    int after_key;                        /* the next value follows a key: no comma */
};

void sb_json_init(struct sb_json *w);
void sb_json_release(struct sb_json *w);
void sb_json_open(struct sb_json *w, char bracket); /* '{' or '[' */
void sb_json_close(struct sb_json *w, char bracket); /* '}' or ']' */
void sb_json_key(struct sb_json *w, const char *key);
void sb_json_str(struct sb_json *w, const char *s); /* NULL -> null */
void sb_json_int(struct sb_json *w, int64_t v);
void sb_json_bool(struct sb_json *w, int v);
/* Pre-serialised JSON (e.g. a json-c tree's text) as one value. */
void sb_json_raw(struct sb_json *w, const char *text, size_t n);
/* key + value shorthands. */
void sb_json_kv_str(struct sb_json *w, const char *key, const char *s);
void sb_json_kv_int(struct sb_json *w, const char *key, int64_t v);
/* v in decimal ("%" PRId64) into buf, which holds SB_JSON_INT_MAX bytes; returns the
 * length (NUL not counted). The record writers format every id this way: snprintf cost
 * 8 % of the sandbox's instructions in the bench's drain. */
#define SB_JSON_INT_MAX 21
size_t sb_json_fmt_int(char *buf, int64_t v);
/* A json-c tree (NULL = null), byte for byte as json_object_to_json_string_ext(o,
 * SB_JSON_C_FLAGS) writes it, as one value; borrowed. A tree nested deeper than
 * SB_JSON_DEPTH fails w (the caller then asks json-c). */
#define SB_JSON_C_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
void sb_json_tree(struct sb_json *w, struct json_object *o);
/* Escape n bytes as json-c would (no quotes) into out (NULL: only measure); returns the
 * length written. Exposed for the unit test. */
size_t sb_json_escape(const char *s, size_t n, char *out);

#endif
