/* resolve_internal.h - private to the resolver's files (resolve.c, resolve_items.c,
 * resolve_refs.c, resolve_query.c): the helpers they share (mapping cache, creation
 * locks, QBO query plumbing, name cleaning, inactive matches).
 *
 * Owns nothing; the definitions live in resolve.c, but resolve_query_rows() in
 * resolve_query.c. No other file may include it: the rest of the program sees only
 * worker/resolve.h. Every function takes a struct resolve_ctx
 * (or nothing) and, like it, is used on one worker thread at a time.
 */
#ifndef HSQB_RESOLVE_INTERNAL_H
#define HSQB_RESOLVE_INTERNAL_H

#include <stddef.h>

#include "common/hash.h"
#include "worker/resolve.h"

struct json_object;

/* Bytes of a cache-key or lock-name suffix ("vendor:<hex128>", "contact:<portal>:<id>"). */
#define RESOLVE_KEY_SUFFIX_MAX 160

/* 1 when s is a non-empty string of ASCII digits (NULL: 0). */
int resolve_is_digits(const char *s);

/* Numeric comparison of two digit strings (QBO ids): <0, 0, >0. */
int resolve_id_cmp(const char *a, const char *b);

/* hex128 of s into out ("0" if hashing fails): what a key holds instead of untrusted text. */
void resolve_hex_of(const char *s, char out[HASH_HEX128_LEN + 1]);

/* 1 with *err set (API_TRANSIENT) when the event's claim was lost, so no create may be
 * sent; else 0. */
int resolve_lost(const struct resolve_ctx *rc, struct api_error *err);

/* The mapping <prefix>map:{realm}:<suffix>, behind the in-process layer. get: 1 with id
 * (RESOLVE_ID_MAX bytes) on a hit, 0 on a miss or Redis failure (the cache is only a
 * cache). set and del log or ignore Redis failures. */
int resolve_map_get(const struct resolve_ctx *rc, const char *suffix, char *id);
void resolve_map_set(const struct resolve_ctx *rc, const char *suffix, const char *id);
void resolve_map_del(const struct resolve_ctx *rc, const char *suffix);

/* Take the creation lock <prefix>lock:{realm}:<name> into *l, waiting up to lock_wait_ms:
 * 0, or -1 with err (API_TRANSIENT when busy or Redis fails). Every 0 is paired with one
 * resolve_lock_drop(). */
int resolve_lock_take(const struct resolve_ctx *rc, const char *name, struct redis_lease *l,
                      struct api_error *err);
void resolve_lock_drop(const struct resolve_ctx *rc, struct redis_lease *l);

/* s as a QBO SQL string literal into dst: 0, or -1 with err (QBO_VALIDATION naming
 * `what`) when it does not fit. */
int resolve_quote(const char *s, char *dst, size_t dstsz, const char *what, struct api_error *err);

/* Run sql (no paging clauses), up to RESOLVE_MAX_CANDIDATES rows: the rows array (new
 * reference, caller puts it) or NULL with err. */
struct json_object *resolve_query_rows(const struct resolve_ctx *rc, const char *sql,
                                       struct api_error *err);

/* Id of a row (borrowed from it); NULL when it has none that looks like an id. */
const char *resolve_row_id(struct json_object *row);

/* A copy of s (NULL: "") trimmed of ASCII whitespace, ':' made '-' and tab/CR/LF made
 * spaces; cut to outsz - 1 bytes on a character boundary (never inside a UTF-8
 * sequence: the text is joined to more text and sent to QBO). */
void resolve_clean_name(const char *s, char *out, size_t outsz);

/* out = a + b, cut to outsz - 1 bytes (callers size the parts so nothing is cut). */
void resolve_join2(char *out, size_t outsz, const char *a, const char *b);

/* A matched record that is inactive: made active again when resolve.reactivate_inactive
 * allows (a sparse update of entity id at sync_token, its requestid step
 * "reactivate:<entity>:<id>"): 0; else -1 with err (QBO_RECORD_INACTIVE naming the noun
 * and name, or the update's failure). */
int resolve_inactive_match(const struct resolve_ctx *rc, const char *entity, const char *noun,
                           const char *name, const char *id, const char *sync_token,
                           struct api_error *err);

/* The row's SyncToken into out ("0" when absent or not digits). */
void resolve_row_sync_token(struct json_object *row, char *out, size_t outsz);

/* A create body could not be built: -1 with err API_TRANSIENT INTERNAL, cleared first so
 * no stale fault code from an earlier attempt survives (callers test it for 6240). */
int resolve_body_oom(struct api_error *err);


#endif
