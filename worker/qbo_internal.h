/* qbo_internal.h - private to the QBO client's files (qbo.c, qbo_company.c): the client
 * object, the one-request layer every call is built on, and the fault-text copier.
 *
 * Owns nothing of its own: struct qbo_api is defined here so both files see its members
 * (qbo.c creates and frees it and sends every request; qbo_company.c keeps the
 * CompanyInfo cache in it). No other file may include it: the rest of the program sees
 * only worker/qbo.h.
 *
 * Thread-safety: as qbo.h says; the company cache (companies, ncompanies, capcompanies)
 * is guarded by mu, everything else in struct qbo_api is immutable after qbo_api_new().
 */
#ifndef HSQB_QBO_INTERNAL_H
#define HSQB_QBO_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "common/http.h"
#include "common/jtape.h"
#include "worker/qbo.h"

/* One realm's CompanyInfo and Preferences in the in-process cache (qbo_company.c). */
struct company_entry {
    char realm[OAUTH_REALM_MAX + 1];
    struct qbo_company c;
    int64_t until; /* monotonic ms */
};

struct qbo_api {
    char *base;
    int minorversion;
    int64_t timeout_ms;
    size_t max_response;
    struct oauth *oauth;
    struct ratelimit *rl;
    struct qbo_hooks hooks;
    pthread_mutex_t mu; /* guards the company cache */
    struct company_entry *companies;
    size_t ncompanies, capcompanies;
};

/* One request to a realm's resource; all borrowed. */
struct qbo_call {
    enum http_method method;
    const char *path;     /* after /v3/company/<realm>/, already escaped */
    const char *endpoint; /* metrics template */
    const struct http_param *params;
    size_t nparams;
    const char *body;
    size_t body_len;
    const char *content_type;
    /* NULL: a 2xx body is handed back as a json-c tree. Else it is parsed into *tape
     * (zeroed by the caller, released by the caller after a 0), with no tree built. */
    struct jtape *tape;
};

/* One request with the 401 cycle (qbo.c's file comment), the rate limiter slot and the
 * classification of every failure (qbo.h's table): 0 on 2xx with the parsed body in
 * c->tape when set, else in *out_doc (new ref; out_doc may then be NULL); -1 with *err
 * (source not yet named: the public call tags it). */
int qbo_exchange(const struct ioctx *io, struct qbo_api *q, const char *realm,
                 const struct qbo_call *c, struct json_object **out_doc, struct api_error *err);

/* The first n bytes of src into dst (dstsz > 0, always terminated, cut to fit), control
 * characters made spaces: untrusted text quoted in a message or a cached field. */
void qbo_copy_text(char *dst, size_t dstsz, const char *src, size_t n);

#endif
