/* jtape.h - the strict JSON parser, into a flat read-only "tape" of nodes.
 *
 * Owns: a tape owns its node array and one string arena; jtape_release() frees both.
 * Every pointer a getter returns points into the arena and lives until the release.
 *
 * Why: the worker reads every HubSpot and QuickBooks answer, and a json-c tree costs an
 * allocation per value, a hash table per object and a copy of every key. A tape is two
 * allocations per document whatever its size: the nodes in document order (pre-order),
 * each container knowing where its subtree ends, and the unescaped, NUL-terminated text
 * of every key, string and number in one arena sized from the input (a token never
 * decodes to more bytes than it takes, quotes included). json_parse_strict() builds its
 * json-c tree from a tape, so both accept exactly the same documents.
 *
 * Acceptance (RFC 8259 and nothing more): rejects, with a message naming the byte offset,
 * invalid UTF-8 (overlongs, surrogates, > U+10FFFF), unpaired \u surrogate escapes, raw
 * control characters and NUL bytes, trailing garbage after the value (whitespace is
 * fine), nesting deeper than max_depth containers ("[]" is depth 1, a scalar depth 0;
 * max_depth <= 0 means 64, larger than JSON_PARSE_DEPTH_MAX means that), duplicated keys
 * within one object (compared after unescaping, so "a" and "\u0061" collide) and keys
 * containing U+0000. A top-level null is a valid tape (json_parse_strict refuses it).
 *
 * The getters follow common/json.h's rules exactly (a JSON null is JGET_MISSING, integer
 * getters refuse any literal with '.', 'e' or 'E', beyond int64 is JGET_RANGE, the
 * lenient ones take integer strings too). Nodes are addressed by index; JTAPE_ROOT is
 * the document's value. Members and elements of container c:
 *     for (size_t i = c + 1, k = 0; k < t->n[c].count; k++, i = t->n[i].next)
 *
 * Thread-safety: a tape is immutable after jtape_parse(); concurrent readers are fine.
 * The process-wide values cap (jtape_set_max_values) is set at start-up. Each thread
 * keeps the node array and the arena of the last small tape it released (at most
 * JTAPE_SPARE_BYTES each) for its next parse, freed when the thread exits (none in
 * AddressSanitizer builds); a tape may be released by another thread than the one that
 * parsed it.
 */
#ifndef HSQB_JTAPE_H
#define HSQB_JTAPE_H

#include <stddef.h>
#include <stdint.h>

#include "common/json.h"

enum jtape_type { JT_NULL, JT_FALSE, JT_TRUE, JT_NUMBER, JT_STRING, JT_ARRAY, JT_OBJECT };

#define JTAPE_ROOT  0
#define JTAPE_NOKEY UINT32_MAX

struct jtape_node {
    uint32_t next;   /* index just past this value's subtree: its next sibling */
    uint32_t count;  /* containers: members or elements; strings, numbers: byte length */
    uint32_t key;    /* member key's arena offset (NUL-terminated), else JTAPE_NOKEY */
    uint32_t keylen; /* bytes */
    uint32_t str;    /* strings: unescaped text, numbers: the literal; arena offset */
    uint8_t type;    /* enum jtape_type */
    uint8_t is_int;  /* numbers: no fraction, no exponent */
};

struct jtape {
    struct jtape_node *n;
    size_t count, cap;
    char *arena;
    size_t arena_len, arena_cap;
};

/* The values cap. Every value (scalar, array, object; a member's key is part of its
 * value) is a 24-byte node, so the cap bounds a parse's node memory: at the default,
 * 512 Ki values = 12 MiB, whatever the document. The default is derived from the
 * worker's default http.max_response_bytes (8 MiB) at one value per JTAPE_BYTES_PER_VALUE
 * bytes, denser than any HubSpot or QBO answer (their values average 15-40 bytes: keys,
 * quotes, ids); the worker sets max_response_bytes / JTAPE_BYTES_PER_VALUE at start-up. */
#define JTAPE_BYTES_PER_VALUE    16
#define JTAPE_SPARE_BYTES        (32 * 1024) /* largest buffer a thread keeps for reuse */
#define JTAPE_MAX_VALUES_DEFAULT ((size_t)8 * 1024 * 1024 / JTAPE_BYTES_PER_VALUE)

/* jtape_parse_max()'s failure when the document holds more than max_values values (an
 * answer to refuse like an oversized one, not a malformed one). */
#define JTAPE_ETOOMANY (-2)

/* Parse text (len bytes, no NUL needed) into t, which must be zeroed or released, with
 * at most max_values values (0, or more than fits a uint32_t index: UINT32_MAX - 1).
 * Returns 0; JTAPE_ETOOMANY when there are more values (errstr "more than N JSON values
 * at byte B"); else -1 with errstr (may be NULL) set. On failure t is left empty.
 * errstr never echoes more than a short, sanitised piece of the input. */
int jtape_parse_max(struct jtape *t, const char *text, size_t len, int max_depth,
                    size_t max_values, char *errstr, size_t errsz);
/* jtape_parse_max() with the process-wide cap, jtape_max_values(). */
int jtape_parse(struct jtape *t, const char *text, size_t len, int max_depth, char *errstr,
                size_t errsz);
/* The process-wide cap: JTAPE_MAX_VALUES_DEFAULT until set; set(0) restores it. Set once
 * at start-up, before threads parse (it is atomic, but a parse already running keeps the
 * cap it started with). */
void jtape_set_max_values(size_t n);
size_t jtape_max_values(void);
/* Free what t holds (or keep it as the calling thread's spare) and zero it. NULL-safe. */
void jtape_release(struct jtape *t);

/* Index of member key of object obj, or 0 when obj is not an object or has no such
 * member (0 is the root, never a member). */
size_t jtape_member(const struct jtape *t, size_t obj, const char *key);

/* Members of object obj (see json.h for the statuses; a non-object obj is
 * JGET_WRONG_TYPE). Strings: *out borrowed from the arena; a string holding U+0000 is
 * JGET_RANGE for jtape_get_str (use jtape_get_strn). */
enum jget_status jtape_get_str(const struct jtape *t, size_t obj, const char *key,
                               const char **out);
enum jget_status jtape_get_strn(const struct jtape *t, size_t obj, const char *key,
                                const char **out, size_t *len);
enum jget_status jtape_get_int64(const struct jtape *t, size_t obj, const char *key, int64_t min,
                                 int64_t max, int64_t *out);
enum jget_status jtape_get_int64_lenient(const struct jtape *t, size_t obj, const char *key,
                                         int64_t min, int64_t max, int64_t *out);
enum jget_status jtape_get_bool(const struct jtape *t, size_t obj, const char *key, int *out);
enum jget_status jtape_get_obj(const struct jtape *t, size_t obj, const char *key, size_t *out);
enum jget_status jtape_get_array(const struct jtape *t, size_t obj, const char *key, size_t *out);

/* The same checks on node i itself (an array element, the root). */
enum jget_status jtape_val_str(const struct jtape *t, size_t i, const char **out);
enum jget_status jtape_val_int64(const struct jtape *t, size_t i, int64_t min, int64_t max,
                                 int64_t *out);
enum jget_status jtape_val_int64_lenient(const struct jtape *t, size_t i, int64_t min, int64_t max,
                                         int64_t *out);

/* Node i's number as a double (strtod in the C locale, whatever the process locale's
 * decimal point), for literals with a fraction or exponent or beyond int64. 0 when i
 * is not a number. */
double jtape_val_double(const struct jtape *t, size_t i);

/* Shared with json.c. */
/* Length of the valid UTF-8 sequence at s (1..4), or 0 if s does not start one
 * (Unicode table 3-7: overlongs, surrogates and code points past U+10FFFF are 0). */
size_t jtape_utf8_len(const unsigned char *s, size_t n);
/* Parses -?(0|[1-9][0-9]*) exactly: JGET_WRONG_TYPE for anything else, JGET_RANGE past
 * int64. */
enum jget_status jtape_dec_int64(const char *s, size_t n, int64_t *out);

#endif
