/* oauth_internal.h - private to the QBO token files (oauth.c, oauth_credentials.c): what
 * both read and write in a realm's Redis hash (the layout is in oauth.h).
 *
 * Owns nothing of its own: struct oauth_stored is one realm's hash as read, the Lua
 * script text writes a new one whole. No other file may include it: the rest of the
 * program sees only worker/oauth.h.
 *
 * Thread-safety: plain values and pure functions; a struct oauth_stored belongs to the
 * call that filled it (and holds secrets: wipe it with oauth_stored_wipe()).
 */
#ifndef HSQB_OAUTH_INTERNAL_H
#define HSQB_OAUTH_INTERNAL_H

#include <stdint.h>

#include "common/redis.h"
#include "worker/atrest.h"
#include "worker/oauth.h"

#define OAUTH_DEFAULT_RT_TTL_MS (100LL * 24 * 3600 * 1000) /* when Intuit sends none */

#define OAUTH_ACCESS_STORED_MAX  (ATREST_STORED_MAX(OAUTH_TOKEN_MAX) + 1)
#define OAUTH_REFRESH_STORED_MAX (ATREST_STORED_MAX(OAUTH_REFRESH_TOKEN_MAX) + 1)

/* What the Redis hash holds for a realm: the tokens opened, and as stored (sealed, or
 * plain text without a key ring) for the compare-and-set scripts, which compare what
 * they read back (worker/atrest.h). */
struct oauth_stored {
    char access[OAUTH_TOKEN_MAX];
    char access_raw[OAUTH_ACCESS_STORED_MAX];
    int64_t access_exp;
    char refresh[OAUTH_REFRESH_TOKEN_MAX];
    char refresh_raw[OAUTH_REFRESH_STORED_MAX];
    int64_t refresh_exp;
    int64_t updated;
    int reauth;
};

/* KEYS[1] hash; ARGV: refresh token (sealed), its expiry, now, access token ("" none;
 * sealed), its expiry. Replaces the realm's hash whole (oauth_credentials.c). */
extern const char oauth_lua_put_refresh[];

/* A Redis string reply holding a decimal integer; 0 when r is NULL, not a string, or not
 * exactly a number. */
int64_t oauth_parse_i64(const redisReply *r);

/* Zero all of *s (it holds tokens). */
void oauth_stored_wipe(struct oauth_stored *s);

#endif
