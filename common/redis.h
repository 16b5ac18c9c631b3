/* redis.h - one thread's Redis connection, Lua scripts, leases and locks.
 *
 * Owns: a hiredis blocking context (re-created after any I/O error), owned copies of
 * the connection options (the key ring for values sealed at rest parsed into its own
 * copy), and a small pool of random bytes for owner tokens.
 *
 * Leases: a key whose value is an owner token while someone holds it. The caller names
 * the key (without the prefix, which the connection adds); this module knows no key
 * layout beyond locks, which live at <prefix>lock:{<tag>}:<name> (the hash tag keeps a
 * tenant's locks in one Redis Cluster slot). Owner tokens are REDIS_TOKEN_LEN lowercase
 * hex characters from getrandom(), so a token never looks like any other value a caller
 * stores in a leased key.
 *
 * Errors: every call returns NULL / -1 / *_ERROR with errstr filled when Redis could
 * not answer (connection, timeout) or answered with an error reply. After an I/O error
 * or a timeout the context is dropped and the next call reconnects (AUTH and SELECT
 * again); the failed call itself is not retried, because a write may or may not have
 * been applied: the caller decides. After a failed connect, calls fail fast for
 * reconnect_backoff_ms instead of stalling every event on a dead server. Passwords
 * never appear in errstr.
 *
 * Thread-safety: a struct redis_conn belongs to one thread at a time (hiredis contexts
 * are not thread-safe). Script objects are read-only after redis_script_init() and may
 * be shared. The process must ignore SIGPIPE: hiredis writes with write(2).
 */
#ifndef HSQB_REDIS_H
#define HSQB_REDIS_H

#include <stddef.h>
#include <stdint.h>
#include <hiredis/hiredis.h>

#include "common/seal.h"

#define REDIS_DEFAULT_PREFIX "hsqb:"
#define REDIS_MAX_PREFIX     64
#define REDIS_MAX_KEY        1024 /* whole key, prefix included (a tag may triple) */
#define REDIS_TOKEN_LEN      32   /* hex characters (128 random bits) */
#define REDIS_EVAL_MAX_ARGS  16   /* keys + args of one redis_eval() */
#define REDIS_MAX_DEFERRED   64   /* deferred commands awaiting their replies */

struct redis_opts {
    const char *host;         /* default "127.0.0.1" */
    int port;                 /* default 6379 */
    const char *unix_path;    /* when set, used instead of host/port */
    const char *username;     /* ACL user for AUTH; NULL: the default user */
    const char *password;     /* NULL: no AUTH. Secret: never logged or echoed */
    int db;                   /* SELECT index, default 0 */
    int connect_timeout_ms;   /* default 1000 */
    int command_timeout_ms;   /* default 1000; a reply slower than this is an error */
    int reconnect_backoff_ms; /* default 100; 0 disables */
    const char *prefix;       /* default REDIS_DEFAULT_PREFIX; no '{' or '}' */
    const char *seal_keys;    /* key ring text (common/seal.h) for values callers seal at
                                 rest; NULL or "": none. Secret: never logged or echoed */
    int seal_required;        /* values must be sealed: callers refuse unsealed ones */
};

/* Fill o with the defaults above. */
void redis_opts_default(struct redis_opts *o);

/* Copy the options and connect (AUTH, SELECT). Fails (NULL, errstr) on bad options or
 * when the first connection cannot be made, so a bad address or password is reported
 * at start-up. Caller frees with redis_conn_free. */
struct redis_conn *redis_conn_new(const struct redis_opts *o, char *errstr, size_t errsz);
/* NULL-safe. */
void redis_conn_free(struct redis_conn *c);
/* The key prefix in use; borrowed from c. */
const char *redis_conn_prefix(const struct redis_conn *c);
/* The key ring parsed from seal_keys (borrowed from c), NULL when none is configured.
 * This module seals nothing itself: callers that keep secrets in Redis (worker/atrest.h)
 * take the ring of the connection they write through. */
const struct seal_keyring *redis_conn_keyring(const struct redis_conn *c);
/* The seal_required option. */
int redis_conn_seal_required(const struct redis_conn *c);

/* Run a command (hiredis format: %s string, %b binary pointer + size_t length).
 * Returns the reply, owned by the caller (freeReplyObject on that pointer only, never
 * on its elements), or NULL with errstr: I/O error, timeout, or an error reply (whose
 * text is in errstr; the connection stays up in that case). */
redisReply *redis_command(struct redis_conn *c, char *errstr, size_t errsz, const char *fmt, ...);

/* A string reply (a secret, a token) into buf: 1 copied, 0 when r is nil or empty (buf
 * ""), -1 when it does not fit in bufsz or holds a NUL (buf ""). r may be NULL (0). */
int redis_reply_str(const redisReply *r, char *buf, size_t bufsz);
/* The oldest Redis the worker runs on: SET ... NX ... GET (the claim) is 7.0's. */
#define REDIS_MIN_MAJOR 7
#define REDIS_MIN_MINOR 0
/* The redis_version field of an INFO answer: 0, or -1 when there is none. */
int redis_version_parse(const char *info, int *major, int *minor);
/* The server's version from INFO server into *major / *minor: 0, or -1 with errstr
 * (unreachable, or no redis_version field). */
int redis_server_version(struct redis_conn *c, int *major, int *minor, char *errstr,
                         size_t errsz);
/* 1 when the server is REDIS_MIN_MAJOR.REDIS_MIN_MINOR or later; 0 when it is older
 * (errstr says which it is and what needs the newer one); -1 unreachable (errstr). */
int redis_version_ok(struct redis_conn *c, char *errstr, size_t errsz);
/* Same with an argument vector; argvlen may be NULL (strlen of each argument). */
redisReply *redis_command_argv(struct redis_conn *c, int argc, const char **argv,
                               const size_t *argvlen, char *errstr, size_t errsz);

/* A Lua script and its SHA-1 (40 hex + NUL), computed locally so EVALSHA needs no round
 * trip. src is borrowed for the script's life (normally a string literal). */
struct redis_script {
    const char *src;
    char sha[41];
};

/* Set s->src and compute s->sha. Returns 0, or -1 (errstr) if hashing fails. */
int redis_script_init(struct redis_script *s, const char *src, char *errstr, size_t errsz);

/* EVALSHA the script; on NOSCRIPT (server restarted, SCRIPT FLUSH, failover) SCRIPT
 * LOAD it and EVALSHA again. nkeys + nargs <= REDIS_EVAL_MAX_ARGS; arglens may be NULL
 * (strlen). Reply ownership and errors as redis_command(). */
redisReply *redis_eval(struct redis_conn *c, const struct redis_script *s, int nkeys,
                       const char **keys, int nargs, const char **args, const size_t *arglens,
                       char *errstr, size_t errsz);

/* Queue a script call whose reply the caller does not need (a release, a re-stamp): it
 * goes out with the next command on this connection, in the same write, and its reply
 * is read and dropped before that command's (an error reply is logged). Saves a round
 * trip per call; the cost is that it runs later: at the next command, at redis_flush(),
 * or at redis_conn_free(). So only for effects that may be late but not lost — and the
 * owner of the connection calls redis_flush() before it goes idle. Sent as EVAL with the
 * source (no NOSCRIPT to recover from). 0, or -1 with errstr (not queued: no
 * connection). At most REDIS_MAX_DEFERRED wait; the next one flushes first. */
int redis_eval_deferred(struct redis_conn *c, const struct redis_script *s, int nkeys,
                        const char **keys, int nargs, const char **args, char *errstr,
                        size_t errsz);
/* The same for a plain command (argvlen may be NULL: strlen of each argument). */
int redis_command_argv_deferred(struct redis_conn *c, int argc, const char **argv,
                                const size_t *argvlen, char *errstr, size_t errsz);
/* Send the deferred commands and read their replies. 0 (also when none wait or c is
 * NULL), or -1 with errstr when the connection failed (those commands are lost). */
int redis_flush(struct redis_conn *c, char *errstr, size_t errsz);
/* Deferred commands not answered yet (tests and assertions). */
int redis_pending(const struct redis_conn *c);

/* A lease on a key: the key and the token proving ownership. Plain data: copy it freely,
 * no release needed. */
struct redis_lease {
    char key[REDIS_MAX_KEY + 1];
    char token[REDIS_TOKEN_LEN + 1];
};

enum redis_lock_status {
    REDIS_LOCK_ERROR = -1,
    REDIS_LOCKED = 0,    /* ours now (or still ours: taking it again with the same lease is
                             safe after a lost reply, and extends it) */
    REDIS_LOCK_BUSY = 1, /* another owner holds it: retry later */
};

enum redis_owner_status {
    REDIS_OWNER_ERROR = -1,
    REDIS_OWNER_OK = 0,   /* we held it: renewed / released */
    REDIS_OWNER_LOST = 1, /* not ours any more (expired, taken over, replaced): untouched */
};

/* Text as the hash tag of a key ("...{<tag>}..."): '{', '}' and '%' become %7B, %7D and
 * %25, every other byte passes. Redis Cluster hashes a key by the text between its first
 * '{' and the next '}', so a brace inside a tag would end it early (ids "a}b" and "a}c"
 * sharing tag "a") or empty it (the whole key hashed: one event's keys in several slots,
 * which multi-key scripts refuse); escaped, the tag is the whole text, one-to-one, and
 * text without those three bytes (every realm, portal and HubSpot callback id) keeps the
 * key it always had. Writes at most dstsz bytes with the terminator, like snprintf, and
 * returns the length the whole escape needs: complete only when it is < dstsz. */
size_t redis_tag_escape(char *dst, size_t dstsz, const char *src);

/* Fill l for key (non-empty, without the prefix: "<prefix><key>" must fit REDIS_MAX_KEY)
 * with a fresh token. 0, or -1 with errstr. Prepare once per attempt and reuse l. */
int redis_lease_prepare(struct redis_conn *c, struct redis_lease *l, const char *key, char *errstr,
                        size_t errsz);

/* Fill l for the lock <prefix>lock:{<tag>}:<name> with a fresh token; tag goes in
 * through redis_tag_escape(). */
int redis_lock_prepare(struct redis_conn *c, struct redis_lease *l, const char *tag,
                       const char *name, char *errstr, size_t errsz);

/* Take the lock for ttl_ms: REDIS_LOCKED, REDIS_LOCK_BUSY or REDIS_LOCK_ERROR. Retaking a lock
 * we hold with the same lease succeeds and extends it. */
enum redis_lock_status redis_lock(struct redis_conn *c, const struct redis_lease *l, int64_t ttl_ms,
                                  char *errstr, size_t errsz);

/* Extend the lease of a leased key to ms (> 0) from now, only if its value is still
 * our token (compare-and-pexpire, Lua). */
enum redis_owner_status redis_lease_renew(struct redis_conn *c, const struct redis_lease *l,
                                          int64_t ms, char *errstr, size_t errsz);

/* Release a lease or unlock a lock: delete the key only if its value is still our token
 * (compare-and-delete, Lua). Any other value (another owner's token, what the owner
 * stored in place of its token) is left. */
enum redis_owner_status redis_lease_release(struct redis_conn *c, const struct redis_lease *l,
                                            char *errstr, size_t errsz);

#endif
