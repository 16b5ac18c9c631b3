/* claim.h - the event-key protocol: who may work on an event, and what its outcome was.
 *
 * Owns the Redis keys of one event (prefix configurable, default "hsqb:"; the hash tag
 * keeps them in one Redis Cluster slot; <event id> is the id through redis_tag_escape(),
 * so '{', '}' and '%' appear as %7B, %7D and %25 and the tag is always the whole id):
 *   <prefix>evt:{<event id>}              owner token while claimed, or the done marker:
 *                                         "done:" + the result JSON
 *   <prefix>evt:{<event id>}:status       "succeeded <n>" or "failed <n>" (n: the bytes
 *                                         of the result JSON), beside the done marker
 *   <prefix>evt:{<event id>}:sent:<step>  "1" once a QBO create of that step was sent
 * and the QBO requestid of each create step (claim_request_id), since those three
 * together are what makes an event's side effects happen once.
 *
 * The event key's life, one atomic command or Lua script per transition (one round trip):
 *
 *   absent --claim_take (SET NX GET: one command)--> token --redis_lease_renew (lease keeper)--> token
 *   token --claim_done (script: SET GET + SET)--> done marker + status (TTL dedup.window)
 *   token --redis_lease_release / lease expires--> absent
 *   done marker of a failure --claim_retake_failed (a replay)--> token (status dropped)
 *
 * The status key says the outcome explicitly, so no reader parses the result to learn
 * it. It sits beside the marker rather than in it so that the marker keeps the layout
 * every release has written: a release from before the status key, running next to this
 * one during a rolling update (or after a rollback), still reads "done:" + JSON as the
 * result it re-publishes. A status counts only when its length matches the marker's
 * result; without one (a marker written by an earlier release, or rewritten by one after
 * a replay) the outcome is read from the result's CloudEvent type (claim_stored_parse).
 *
 * Errors: NULL / -1 / *_ERROR with errstr when Redis could not answer; see
 * common/redis.h for the connection's rules (no call is retried here: the caller decides).
 *
 * Thread-safety: the functions take the calling thread's connection; the scripts are
 * hashed once per process.
 */
#ifndef HSQB_CLAIM_H
#define HSQB_CLAIM_H

#include <stddef.h>
#include <stdint.h>

#include "common/redis.h"

#define CLAIM_MAX_RESULT (1024 * 1024) /* result JSON stored with the done marker */
/* QBO limits requestid to 50 characters. */
#define CLAIM_REQUEST_ID_MAX 50

enum claim_status {
    CLAIM_ERROR = -1,
    CLAIM_OURS = 0, /* ours now (or still ours: claiming again with the same lease after a
                       lost reply is safe, and extends it) */
    CLAIM_DONE = 1, /* already processed: the stored outcome is returned */
    CLAIM_BUSY = 2, /* another owner holds a live lease, or (retake) a stored success */
};

/* An outcome recorded in a done marker. result is malloc'd and NUL-terminated (the
 * caller frees it with claim_stored_release); len excludes the NUL. */
struct claim_stored {
    int failed; /* 1: a failed result, 0: a success */
    char *result;
    size_t len;
};

void claim_stored_release(struct claim_stored *s);

/* Hash the event scripts now (they are hashed on first use otherwise), so that a
 * failure shows at start-up. 0, or -1 with errstr. */
int claim_init(char *errstr, size_t errsz);

/* Fill l for event_id (non-empty): key <prefix>evt:{<event_id>}, fresh token. 0, or -1
 * (errstr) when the key would exceed REDIS_MAX_KEY. Prepare once per processing attempt
 * and reuse l for take, renew, done and release. */
int claim_prepare(struct redis_conn *c, struct redis_lease *l, const char *event_id, char *errstr,
                  size_t errsz);

/* Claim the event for lease_ms (> 0): free -> ours; ours -> lease extended; done ->
 * CLAIM_DONE with *stored filled (stored may be NULL: not wanted); else BUSY. *stored is
 * set only for CLAIM_DONE. */
enum claim_status claim_take(struct redis_conn *c, const struct redis_lease *l, int64_t lease_ms,
                             struct claim_stored *stored, char *errstr, size_t errsz);

/* For a replayed event whose stored outcome is a failure: replace that done marker (or
 * an absent key) by our token for lease_ms, and drop its status. CLAIM_OURS, CLAIM_BUSY
 * (a success is stored, a live claim, or an unexpected answer), or CLAIM_ERROR (Redis
 * did not answer). */
enum claim_status claim_retake_failed(struct redis_conn *c, const struct redis_lease *l,
                                      int64_t lease_ms, char *errstr, size_t errsz);

enum claim_done_status {
    CLAIM_DONE_ERROR = -1,
    CLAIM_DONE_WRITTEN = 0,    /* we held the claim; it is now the done marker */
    CLAIM_DONE_TAKEN_OVER = 1, /* our lease had expired or been taken; written anyway */
    CLAIM_DONE_ALREADY = 2,    /* a done marker was there already; left unchanged */
};

/* An outcome to record: the result JSON (len <= CLAIM_MAX_RESULT bytes, borrowed) and
 * whether it is a failure. */
struct claim_record {
    int failed;
    const char *result;
    size_t len;
};

/* Replace the claim with the done marker of rec and its status, both expiring after
 * ttl_ms (the dedup window).
 *
 * Decision: the marker is written even when our claim was lost (lease expired, possibly
 * re-claimed by another worker). When this is called the QuickBooks side effect has
 * happened; recording it is what stops any later delivery from redoing the work, and a
 * worker that took the claim over finds its renew failing and its own claim answering
 * DONE. An existing done marker is never overwritten (the first recorded outcome wins;
 * its TTL restarts at ttl_ms, which only lengthens it when, as in the worker, every done
 * uses the same dedup window). */
enum claim_done_status claim_done(struct redis_conn *c, const struct redis_lease *l,
                                  const struct claim_record *rec, int64_t ttl_ms, char *errstr,
                                  size_t errsz);

/* The stored outcome of event_id without claiming it (hsqb-worker replay): 1 with
 * *stored filled when a done marker is there, 0 when not (absent or claimed), -1 with
 * errstr. */
int claim_peek(struct redis_conn *c, const char *event_id, struct claim_stored *stored,
               char *errstr, size_t errsz);

/* The stored outcome of a done marker: json (len bytes, the value after "done:") and
 * status (slen bytes, the status key's value; NULL when absent) into *out (result
 * malloc'd). The status decides when it belongs to this result (its length matches),
 * else the result's CloudEvent type does. 0, or -1 on allocation failure. Pure; exposed
 * for the tests of both marker generations. */
int claim_stored_parse(const char *json, size_t len, const char *status, size_t slen,
                       struct claim_stored *out);

/* Mark that step's QBO create of event_id is about to be sent (SET NX, ttl_ms): 0 when
 * we are the first, 1 when it was marked before (a retry, a crash, a taken-over claim:
 * look the document up before creating), -1 with errstr when Redis could not say. */
int claim_mark_sent(struct redis_conn *c, const char *event_id, const char *step, int64_t ttl_ms,
                    char *errstr, size_t errsz);

/* Deterministic QBO requestid for one create step of one event: "hsqb-" + the first 40
 * hex characters (160 bits) of SHA-256(event_id || 0x00 || step), 45 characters. The NUL
 * separator makes (event_id, step) -> input one-to-one. QBO scopes ids per realm; among N
 * ids the chance of any collision is about N^2 / 2^161, below 1e-30 for N = 1e9, so
 * distinct steps never share an id while the same (event, step) always gets the same
 * one, across retries, workers and replays. Neither argument may be NULL. 0 ok / -1. */
int claim_request_id(const char *event_id, const char *step, char out[CLAIM_REQUEST_ID_MAX + 1]);

/* claim_request_id() for an event replayed `generation` times (hsqb-replay-count; 0 for
 * first deliveries and their redeliveries and retries, which keep exactly the ids above):
 * the step becomes "<step>#r<generation>", so a dead letter replayed after its data was
 * fixed is not answered with the error QBO cached under the old requestid. Every create
 * of a replay still looks its document up first (the sent markers are per step, not per
 * generation), so a replay never makes a second document. 0 ok / -1. */
int claim_request_id_gen(const char *event_id, const char *step, int generation,
                         char out[CLAIM_REQUEST_ID_MAX + 1]);

#endif
