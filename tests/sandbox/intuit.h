/* intuit.h - helpers shared by the two Intuit parts of the sandbox (qbo.c, oauth.c).
 *
 * Owns nothing; implemented in oauth.c. Thread-safe (oauth.c's own lock where state is
 * read).
 */
#ifndef HSQB_SANDBOX_INTUIT_H
#define HSQB_SANDBOX_INTUIT_H

#include <stddef.h>

#define INTUIT_TID_LEN 40 /* buffer size for intuit_tid() */

/* A fresh transaction id as Intuit prints it: "1-<8 hex epoch seconds>-<24 hex>". */
void intuit_tid(char *buf, size_t bufsz);

/* Fill buf with n random characters from [A-Za-z0-9] (n < bufsz). */
void intuit_random_chars(char *buf, size_t bufsz, size_t n);

enum oauth_token_state {
    OAUTH_TOKEN_VALID = 1,
    OAUTH_TOKEN_UNKNOWN = 0, /* never issued, revoked, or issued for another realm */
    OAUTH_TOKEN_EXPIRED = -1,
};

/* Why an access token is or is not good for realm_id (both may be NULL -> UNKNOWN). */
enum oauth_token_state oauth_access_token_state(const char *realm_id, const char *token);

#endif
