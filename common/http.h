/* http.h - one thread's HTTP client: a libcurl easy handle with bounded responses.
 *
 * Owns: a CURL easy handle (and through it libcurl's connection cache, so keep-alive
 * connections are reused across requests to the same host), the scratch buffers used to
 * build request headers and form bodies. A struct http_response owns its body and header
 * buffers; both grow as needed and are reused by the next request made with it. A
 * released response's buffers (up to 64 KB each, wiped) stay with the thread
 * for the next response it receives (not in AddressSanitizer builds), and are freed when
 * the thread exits, so a thread that keeps one client allocates nothing for responses in
 * the steady state even with a new struct http_response per request (libcurl's own
 * bookkeeping aside).
 *
 * Invariants:
 *  - Every response is bounded: at most max_body body bytes (after content decoding) and
 *    max_header_bytes of captured headers; exceeding either is HTTP_ETOOBIG, never a
 *    silently truncated body.
 *  - No retries, no redirects, no proxy from the environment: one call, one exchange.
 *    Retry policy (429, 5xx, timeouts) belongs to the caller, which gets the status,
 *    the headers (Retry-After) and a transport error class to decide with.
 *  - Secrets (bearer token, basic-auth password) are only ever sent as headers; they are
 *    wiped from the scratch buffer after the exchange and never appear in errstr.
 *  - Any HTTP status, including 4xx/5xx/429, is HTTP_OK at the transport level.
 *
 * Thread-safety: a struct http_client belongs to one thread at a time (libcurl's rule
 * for easy handles). Different clients in different threads need no locking. Call
 * http_global_init() (idempotent, thread-safe) before starting threads, or let
 * http_client_new() do it. The process must ignore SIGPIPE (CURLOPT_NOSIGNAL is set, so
 * libcurl does not do it for us and a TLS write to a reset peer would raise it).
 */
#ifndef HSQB_HTTP_H
#define HSQB_HTTP_H

#include <stddef.h>
#include <stdint.h>

#define HTTP_DEFAULT_CONNECT_TIMEOUT_MS 3000
#define HTTP_DEFAULT_TIMEOUT_MS         30000
#define HTTP_DEFAULT_MAX_BODY           (8u * 1024 * 1024) /* response body bytes */
#define HTTP_DEFAULT_MAX_HEADER_BYTES   (64u * 1024)       /* captured response headers */
#define HTTP_MAX_REQ_HEADERS            32                 /* extra request headers per request */
#define HTTP_MAX_URL                    8192

enum http_method { HTTP_GET = 0, HTTP_POST, HTTP_PUT, HTTP_DELETE, HTTP_PATCH };

/* Transport outcome. Only HTTP_OK carries a status; the others mean no complete
 * response was received. HTTP_ECONNECT means the request was certainly not sent
 * (resolve or connect failed), so even a non-idempotent request may be retried. */
enum http_error {
    HTTP_OK = 0,
    HTTP_ECONNECT, /* DNS failure, connection refused or unreachable */
    HTTP_ETIMEOUT, /* connect or total timeout fired (request may have been processed) */
    HTTP_ETOOBIG,  /* body over max_body or headers over max_header_bytes */
    HTTP_EOTHER,   /* TLS, protocol, connection reset, empty reply, bad request args */
};

/* "ok", "connect", "timeout", "too big", "other". */
const char *http_error_str(enum http_error e);

struct http_header {
    const char *name;
    const char *value;
};

/* Query parameter or form field. */
struct http_param {
    const char *key;
    const char *value;
};

struct http_client_opts {
    long connect_timeout_ms; /* > 0 */
    long timeout_ms;         /* whole exchange, > 0; a request may override it */
    size_t max_body;         /* > 0 */
    size_t max_header_bytes; /* > 0 */
    const char *proxy;       /* NULL or "": no proxy (environment ignored); copied */
    const char *user_agent;  /* NULL: "hsqb"; copied */
    int accept_gzip;         /* ask for gzip/deflate; max_body applies to decoded bytes */
    /* NULL, or a flag the owner sets (atomically, from any thread) to stop the client: an
     * exchange in progress, or one started while it is set, ends within about a second
     * with HTTP_EOTHER and errstr "other: aborted". For servers that must shut down
     * without waiting out a long timeout. Borrowed; must outlive the client. */
    const int *abort_flag;
};

/* Fill o with the defaults above. */
void http_client_opts_default(struct http_client_opts *o);

/* All pointers are borrowed for the duration of http_client_do(). Unset members are
 * NULL/0. */
struct http_request {
    enum http_method method;
    const char *url; /* absolute http:// or https:// URL, at most HTTP_MAX_URL bytes */
    const struct http_header *headers; /* extra headers; no CR/LF allowed in them */
    size_t nheaders;                   /* <= HTTP_MAX_REQ_HEADERS */
    const char *body;                  /* request body (POST/PUT/DELETE/PATCH), may be NULL */
    size_t body_len;
    const char *content_type; /* for body; NULL: application/octet-stream */
    const char *bearer;       /* secret: sent as "Authorization: Bearer <bearer>" */
    /* Form post: when nform > 0 the body is application/x-www-form-urlencoded built
     * from these pairs (body/content_type must then be NULL). */
    const struct http_param *form;
    size_t nform;
    /* HTTP basic auth (OAuth client credentials, "client_secret_basic"): sent as
     * "Authorization: Basic base64(user:pass)" when basic_user is set. Secret. Mutually
     * exclusive with bearer. The pair is encoded raw, as Intuit documents it. */
    const char *basic_user;
    const char *basic_pass;
    long timeout_ms; /* 0: the client's default */
};

/* A response. Fields below are readable after http_client_do(); the buffers are owned
 * by the response and reused by the next request made with it (so a body pointer is
 * valid until that next request or http_response_release()). */
struct http_response {
    long status;            /* HTTP status; 0 when error != HTTP_OK */
    char *body;             /* NUL-terminated (may also contain NULs); never NULL after
                               a call, "" when empty */
    size_t body_len;        /* bytes, excluding the terminator */
    int64_t total_ms;       /* wall time of the exchange, also set on errors */
    int64_t retry_after_ms; /* parsed Retry-After (seconds or HTTP-date), -1 if none */
    enum http_error error;  /* same value http_client_do() returned */
    /* private: body buffer capacity and captured headers "name\0value\0..." */
    size_t body_cap;
    char *hdrs;
    size_t hdrs_len;
    size_t hdrs_cap;
};

/* Initialise an empty response (no allocation). Release with http_response_release. */
void http_response_init(struct http_response *r);
/* Free the buffers, or wipe them and keep them as the calling thread's spares (see
 * above); r may be reused after http_response_init. NULL-safe. */
void http_response_release(struct http_response *r);

/* Value of the first response header called name (ASCII case-insensitive), with
 * surrounding whitespace removed; NULL when absent. Borrowed from r, valid until the
 * next request made with r. Headers of interim 1xx responses are not included. */
const char *http_response_header(const struct http_response *r, const char *name);

/* Initialise libcurl once per process (pthread_once). Returns 0 or -1 (errstr filled). */
int http_global_init(char *errstr, size_t errsz);

/* Create a client. opts may be NULL (defaults). Returns NULL with errstr on failure.
 * Caller frees with http_client_free. */
struct http_client *http_client_new(const struct http_client_opts *opts, char *errstr,
                                    size_t errsz);
/* NULL-safe. Closes the client's cached connections. */
void http_client_free(struct http_client *c);

/* Perform one request and fill resp (see struct http_response for ownership).
 * Returns HTTP_OK when a complete response arrived, whatever its status; otherwise the
 * transport error class, with errstr describing it (curl's text, no secrets). resp is
 * updated in both cases (status 0 and an empty body on errors). */
enum http_error http_client_do(struct http_client *c, const struct http_request *req,
                               struct http_response *resp, char *errstr, size_t errsz);

/* Percent-encode src[0..len) for use as a query value, form field or path segment:
 * RFC 3986 unreserved bytes (A-Z a-z 0-9 - . _ ~) pass through, every other byte
 * becomes %XX. Writes at most dstsz bytes including the terminator, like snprintf, and
 * returns the length the full encoding needs (excluding the terminator): the output is
 * complete only when the return value < dstsz. */
size_t http_url_escape(char *dst, size_t dstsz, const char *src, size_t len);

/* Percent-encode src[0..len) as one URL path segment (an id between two '/'): as
 * http_url_escape, except that a segment of only "." or ".." is written "%2E" / "%2E%2E".
 * A bare dot segment would be resolved away by the client or any server on the way (RFC
 * 3986 5.2.4: "callbacks/./complete" is "callbacks/complete"), so the request would
 * reach another resource; encoded, the segment stays the id's. Same return convention
 * as http_url_escape. Every untrusted id that goes into a path goes through this. */
size_t http_path_escape(char *dst, size_t dstsz, const char *src, size_t len);

/* Build base + "?k=v&k=v" (or "&..." when base already has a query) into dst, every key
 * and value percent-encoded. NULL values are skipped. Returns 0, or -1 with errstr when
 * it does not fit in dstsz (dst is then the empty string). */
int http_url_build(char *dst, size_t dstsz, const char *base, const struct http_param *params,
                   size_t nparams, char *errstr, size_t errsz);

#endif
