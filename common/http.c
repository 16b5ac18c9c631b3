/* http.c - libcurl easy-handle wrapper.
 *
 * One easy handle per thread, kept for the thread's life: libcurl keeps the connection
 * cache, DNS cache and TLS session cache on the handle, so reusing it is what makes
 * keep-alive (and TLS resumption) happen. Options that describe the client are set
 * once in http_client_new(); options that describe one request (URL, method, body,
 * headers, timeout) are all set again on every request, so nothing leaks from one
 * request into the next without paying for curl_easy_reset().
 *
 * Allocation: request headers are built as "Name: value" lines in a scratch buffer
 * owned by the client and linked through an array of struct curl_slist nodes that the
 * client also owns (libcurl only walks the list and never frees it), so no
 * curl_slist_append() per request. Form bodies go to a second client-owned buffer.
 * Response bodies and headers land in buffers owned by struct http_response, grown by
 * doubling (a body sized once from its Content-Length) and reused; a released
 * response's buffers are wiped and kept as the thread's spares (common/spare.h) for
 * the next response, because the worker makes a new response for each of its four
 * requests an event (not in AddressSanitizer builds: there a released response's bytes
 * must fault when read). Both scratch buffers are wiped after each exchange because they
 * held credentials.
 *
 * Bounds: the body callback refuses bytes past max_body and the header callback refuses
 * headers past max_header_bytes; the callbacks flag the reason so the resulting
 * CURLE_WRITE_ERROR is reported as HTTP_ETOOBIG. CURLOPT_MAXFILESIZE_LARGE also rejects
 * an announced Content-Length over the cap before any byte is read.
 */
#include "common/http.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "common/spare.h"

#define HTTP_MAX_REQ_HEADER_BYTES (64u * 1024)  /* all request header lines together */
#define HTTP_MAX_FORM_BYTES       (64u * 1024)  /* an encoded form body */
#define HTTP_MAX_BASIC_CRED       1024          /* "user:pass" for basic auth */
#define HTTP_KEEP_BODY_BYTES      (256u * 1024) /* larger body buffers are freed, not kept */
#define HTTP_SPARE_BYTES          (64u * 1024)  /* larger released buffers are not spares */
/* Extra headers plus the ones we add: Expect, User-Agent, Content-Type, Authorization. */
#define HTTP_MAX_HEADER_NODES (HTTP_MAX_REQ_HEADERS + 4)

struct sbuf {
    char *p;
    size_t len;
    size_t cap;
};

struct http_client {
    CURL *h;
    struct http_client_opts opts;
    char *proxy; /* owned copies of opts strings */
    char *user_agent;
    struct sbuf hdr;  /* request header lines, NUL-separated */
    struct sbuf form; /* encoded form body */
    struct curl_slist nodes[HTTP_MAX_HEADER_NODES];
    char errbuf[CURL_ERROR_SIZE];
};

/* State shared with the callbacks for one exchange. */
struct xfer {
    struct http_client *c;
    struct http_response *r;
    size_t hdr_raw; /* raw header bytes seen, interim responses included */
    int too_big;    /* 1: body over cap, 2: headers over cap, 3: out of memory */
};

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static CURLcode g_init_rc = CURLE_FAILED_INIT;

static void global_init_once(void)
{
    g_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int http_global_init(char *errstr, size_t errsz)
{
    pthread_once(&g_once, global_init_once);
    if (g_init_rc != CURLE_OK) {
        snprintf(errstr, errsz, "curl_global_init: %s", curl_easy_strerror(g_init_rc));
        return -1;
    }
    return 0;
}

const char *http_error_str(enum http_error e)
{
    switch (e) {
    case HTTP_OK:
        return "ok";
    case HTTP_ECONNECT:
        return "connect";
    case HTTP_ETIMEOUT:
        return "timeout";
    case HTTP_ETOOBIG:
        return "too big";
    case HTTP_EOTHER:
        break;
    }
    return "other";
}

void http_client_opts_default(struct http_client_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->connect_timeout_ms = HTTP_DEFAULT_CONNECT_TIMEOUT_MS;
    o->timeout_ms = HTTP_DEFAULT_TIMEOUT_MS;
    o->max_body = HTTP_DEFAULT_MAX_BODY;
    o->max_header_bytes = HTTP_DEFAULT_MAX_HEADER_BYTES;
}

/* Make room for `need` bytes (terminator included) in *p, never past max + 1. */
static int grow(char **p, size_t *cap, size_t need, size_t max)
{
    size_t ncap;
    char *np;

    if (need <= *cap)
        return 0;
    if (need > max + 1)
        return -1;
    ncap = *cap ? *cap : 1024;
    while (ncap < need)
        ncap *= 2;
    if (ncap > max + 1)
        ncap = max + 1;
    np = realloc(*p, ncap);
    if (!np)
        return -1;
    *p = np;
    *cap = ncap;
    return 0;
}

static int sbuf_add(struct sbuf *b, const char *s, size_t n, size_t max)
{
    if (n > max || b->len > max - n || grow(&b->p, &b->cap, b->len + n + 1, max) < 0)
        return -1;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static int sbuf_add_str(struct sbuf *b, const char *s, size_t max)
{
    return sbuf_add(b, s, strlen(s), max);
}

static int sbuf_add_escaped(struct sbuf *b, const char *s, size_t max)
{
    size_t n = strlen(s), need = http_url_escape(NULL, 0, s, n);

    if (need > max || b->len > max - need || grow(&b->p, &b->cap, b->len + need + 1, max) < 0)
        return -1;
    http_url_escape(b->p + b->len, need + 1, s, n);
    b->len += need;
    return 0;
}

static void sbuf_wipe(struct sbuf *b)
{
    if (b->p)
        explicit_bzero(b->p, b->len);
    b->len = 0;
}

size_t http_url_escape(char *dst, size_t dstsz, const char *src, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t i, out = 0;

    for (i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)src[i];
        int plain = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                    (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' || ch == '~';
        if (plain) {
            if (out + 1 < dstsz)
                dst[out] = (char)ch;
            out++;
        } else {
            if (out + 3 < dstsz) {
                dst[out] = '%';
                dst[out + 1] = hex[ch >> 4];
                dst[out + 2] = hex[ch & 15];
            } else if (out < dstsz) {
                dstsz = out + 1; /* no partial escapes: stop writing here */
            }
            out += 3;
        }
    }
    if (dstsz > 0)
        dst[out < dstsz ? out : dstsz - 1] = '\0';
    return out;
}

size_t http_path_escape(char *dst, size_t dstsz, const char *src, size_t len)
{
    static const char dots[] = "%2E%2E";

    if ((len == 1 || len == 2) && src[0] == '.' && src[len - 1] == '.') {
        size_t need = 3 * len;

        if (dstsz > 0) /* like http_url_escape: complete escapes only */
            snprintf(dst, dstsz, "%.*s", need < dstsz ? (int)need : 0, dots);
        return need;
    }
    return http_url_escape(dst, dstsz, src, len);
}

int http_url_build(char *dst, size_t dstsz, const char *base, const struct http_param *params,
                   size_t nparams, char *errstr, size_t errsz)
{
    size_t len = strlen(base), i;
    int first = strchr(base, '?') == NULL;

    if (dstsz == 0)
        goto toolong;
    if (len >= dstsz)
        goto toolong;
    memcpy(dst, base, len + 1);
    for (i = 0; i < nparams; i++) {
        if (!params[i].value)
            continue;
        if (len + 1 >= dstsz)
            goto toolong;
        dst[len++] = first ? '?' : '&';
        first = 0;
        len += http_url_escape(dst + len, dstsz - len, params[i].key, strlen(params[i].key));
        if (len + 1 >= dstsz)
            goto toolong;
        dst[len++] = '=';
        len += http_url_escape(dst + len, dstsz - len, params[i].value, strlen(params[i].value));
        if (len >= dstsz)
            goto toolong;
    }
    dst[len] = '\0';
    return 0;
toolong:
    if (dstsz > 0)
        dst[0] = '\0';
    snprintf(errstr, errsz, "url longer than %zu bytes", dstsz ? dstsz - 1 : 0);
    return -1;
}

void http_response_init(struct http_response *r)
{
    memset(r, 0, sizeof(*r));
    r->retry_after_ms = -1;
}

/* The calling thread's spare response buffers (body, headers; capacities in bytes). */
enum { SPARE_BODY, SPARE_HDRS };
static __thread struct spare_set rspare;

/* Keep *p (cap bytes, wiped whole: an error path may have reset a length past what was
 * written) as the thread's spare in slot when the buffer is small enough and the slot
 * free; 1 when kept. */
static int spare_keep(size_t slot, char **p, size_t cap)
{
    if (!SPARE_BUFFERS || !*p || cap > HTTP_SPARE_BYTES || !spare_put(&rspare, slot, *p, cap, cap))
        return 0;
    *p = NULL;
    return 1;
}

void http_response_release(struct http_response *r)
{
    if (!r)
        return;
    (void)spare_keep(SPARE_BODY, &r->body, r->body_cap);
    (void)spare_keep(SPARE_HDRS, &r->hdrs, r->hdrs_cap);
    free(r->body);
    free(r->hdrs);
    http_response_init(r);
}

/* An empty response takes the thread's spare buffers. */
static void spare_adopt(struct http_response *r)
{
    char *p;
    size_t cap;

    if (!r->body && (p = spare_take(&rspare, SPARE_BODY, 0, &cap)) != NULL) {
        r->body = p;
        r->body_cap = cap;
    }
    if (!r->hdrs && (p = spare_take(&rspare, SPARE_HDRS, 0, &cap)) != NULL) {
        r->hdrs = p;
        r->hdrs_cap = cap;
    }
}

const char *http_response_header(const struct http_response *r, const char *name)
{
    size_t off = 0;

    while (off < r->hdrs_len) {
        const char *n = r->hdrs + off;
        const char *v = n + strlen(n) + 1;
        if (strcasecmp(n, name) == 0)
            return v;
        off = (size_t)(v + strlen(v) + 1 - r->hdrs);
    }
    return NULL;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *opaque)
{
    struct xfer *x = opaque;
    struct http_response *r = x->r;
    size_t n = size * nmemb, max = x->c->opts.max_body;

    if (n > max - r->body_len) {
        x->too_big = 1;
        return 0;
    }
    if (r->body_len == 0) {
        /* The announced length, when there is one within the cap, sizes the buffer once
         * rather than by doubling (a hint only: a compressed body may decode larger). */
        curl_off_t cl = -1;
        if (curl_easy_getinfo(x->c->h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) == CURLE_OK &&
            cl > 0 && (uint64_t)cl <= max &&
            grow(&r->body, &r->body_cap, (size_t)cl + 1, max) < 0) {
            x->too_big = 3;
            return 0;
        }
    }
    if (grow(&r->body, &r->body_cap, r->body_len + n + 1, max) < 0) {
        x->too_big = 3;
        return 0;
    }
    memcpy(r->body + r->body_len, ptr, n);
    r->body_len += n;
    r->body[r->body_len] = '\0';
    return n;
}

/* Capture "Name: value" lines as "Name\0value\0". A status line starts a new response
 * (1xx interim responses come first), so it clears what was captured before. */
static size_t on_header(char *ptr, size_t size, size_t nmemb, void *opaque)
{
    struct xfer *x = opaque;
    struct http_response *r = x->r;
    size_t n = size * nmemb, max = x->c->opts.max_header_bytes, nlen, vlen;
    const char *colon, *v, *end = ptr + n;

    x->hdr_raw += n;
    if (x->hdr_raw > max) {
        x->too_big = 2;
        return 0;
    }
    if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0) {
        r->hdrs_len = 0;
        return n;
    }
    if (n == 0 || ptr[0] == ' ' || ptr[0] == '\t') /* obsolete line folding: ignored */
        return n;
    colon = memchr(ptr, ':', n);
    if (!colon || colon == ptr)
        return n; /* blank line ending the block, or garbage */
    nlen = (size_t)(colon - ptr);
    v = colon + 1;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    vlen = (size_t)(end - v);
    if (grow(&r->hdrs, &r->hdrs_cap, r->hdrs_len + nlen + vlen + 2, max + 2) < 0) {
        x->too_big = 2;
        return 0;
    }
    memcpy(r->hdrs + r->hdrs_len, ptr, nlen);
    r->hdrs[r->hdrs_len + nlen] = '\0';
    memcpy(r->hdrs + r->hdrs_len + nlen + 1, v, vlen);
    r->hdrs[r->hdrs_len + nlen + 1 + vlen] = '\0';
    r->hdrs_len += nlen + vlen + 2;
    return n;
}

/* CURLOPT_XFERINFOFUNCTION: libcurl calls it at least once a second, also while a
 * connection is idle, so a set abort flag ends the exchange without waiting for its
 * timeout. */
static int on_progress(void *opaque, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    const struct http_client *c = opaque;
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    return __atomic_load_n(c->opts.abort_flag, __ATOMIC_RELAXED) != 0;
}

static int has_crlf(const char *s)
{
    return strpbrk(s, "\r\n") != NULL;
}

struct http_client *http_client_new(const struct http_client_opts *opts, char *errstr, size_t errsz)
{
    struct http_client *c = NULL;
    struct http_client_opts def;
    CURLcode rc = CURLE_OK;

    if (!opts) {
        http_client_opts_default(&def);
        opts = &def;
    }
    if (opts->connect_timeout_ms <= 0 || opts->timeout_ms <= 0 || opts->max_body == 0 ||
        opts->max_header_bytes == 0) {
        snprintf(errstr, errsz, "http client: timeouts and size caps must be positive");
        return NULL;
    }
    if (http_global_init(errstr, errsz) < 0)
        return NULL;
    c = calloc(1, sizeof(*c));
    if (!c)
        goto oom;
    c->opts = *opts;
    c->proxy = strdup(opts->proxy ? opts->proxy : "");
    c->user_agent = strdup(opts->user_agent ? opts->user_agent : "hsqb");
    c->h = curl_easy_init();
    if (!c->proxy || !c->user_agent || !c->h)
        goto oom;
    if (has_crlf(c->user_agent)) {
        snprintf(errstr, errsz, "http client: CR/LF in the user agent");
        goto fail;
    }
    c->opts.proxy = c->proxy;
    c->opts.user_agent = c->user_agent;

#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (rc == CURLE_OK)                                                                        \
            rc = curl_easy_setopt(c->h, opt, val);                                                 \
    } while (0)
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_ERRORBUFFER, c->errbuf);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
#else
    SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    SET(CURLOPT_TCP_NODELAY, 1L);
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    SET(CURLOPT_TCP_KEEPIDLE, 30L);
    SET(CURLOPT_TCP_KEEPINTVL, 15L);
    SET(CURLOPT_CONNECTTIMEOUT_MS, opts->connect_timeout_ms);
    SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)opts->max_body);
    SET(CURLOPT_PROXY, c->proxy); /* "" also disables the *_proxy environment */
    SET(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    /* No CURLOPT_USERAGENT: libcurl would format "User-Agent: ..." anew on every
     * request; build_request() writes the line into the client's own buffer. */
    if (opts->accept_gzip)
        SET(CURLOPT_ACCEPT_ENCODING, "");
    if (opts->abort_flag) {
        SET(CURLOPT_NOPROGRESS, 0L);
        SET(CURLOPT_XFERINFOFUNCTION, on_progress);
        SET(CURLOPT_XFERINFODATA, c);
    }
#undef SET
    if (rc != CURLE_OK) {
        snprintf(errstr, errsz, "http client: curl_easy_setopt: %s", curl_easy_strerror(rc));
        goto fail;
    }
    return c;
oom:
    snprintf(errstr, errsz, "http client: out of memory");
fail:
    http_client_free(c);
    return NULL;
}

void http_client_free(struct http_client *c)
{
    if (!c)
        return;
    if (c->h)
        curl_easy_cleanup(c->h);
    sbuf_wipe(&c->hdr);
    sbuf_wipe(&c->form);
    free(c->hdr.p);
    free(c->form.p);
    free(c->proxy);
    free(c->user_agent);
    free(c);
}

/* base64 of src[0..n) into dst (4 * ceil(n / 3) + 1 bytes), NUL-terminated. */
static void b64_encode(char *dst, const unsigned char *src, size_t n)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i;

    for (i = 0; i < n; i += 3, dst += 4) {
        unsigned v = (unsigned)src[i] << 16 | (i + 1 < n ? (unsigned)src[i + 1] << 8 : 0) |
                     (i + 2 < n ? src[i + 2] : 0);
        dst[0] = t[(v >> 18) & 63];
        dst[1] = t[(v >> 12) & 63];
        dst[2] = i + 1 < n ? t[(v >> 6) & 63] : '=';
        dst[3] = i + 2 < n ? t[v & 63] : '=';
    }
    *dst = '\0';
}

/* Append the header line a + b + c (b, c may be NULL) and record where it starts. */
static int add_line(struct http_client *c, size_t *offs, size_t *n, const char *a, const char *b,
                    const char *d)
{
    const size_t max = HTTP_MAX_REQ_HEADER_BYTES;

    offs[(*n)++] = c->hdr.len;
    if (sbuf_add_str(&c->hdr, a, max) < 0 || (b && sbuf_add_str(&c->hdr, b, max) < 0) ||
        (d && sbuf_add_str(&c->hdr, d, max) < 0) || sbuf_add(&c->hdr, "", 1, max) < 0)
        return -1;
    return 0;
}

/* What is wrong with req before anything is sent, or NULL. */
static const char *invalid_request(const struct http_request *req)
{
    size_t i;

    if ((unsigned)req->method > HTTP_PATCH)
        return "invalid method";
    if (!req->url || has_crlf(req->url) || strlen(req->url) > HTTP_MAX_URL)
        return "invalid or missing url";
    if (req->nheaders > HTTP_MAX_REQ_HEADERS || (req->nheaders && !req->headers))
        return "too many request headers";
    if (req->nform && (req->body || req->content_type || req->method == HTTP_GET))
        return "form fields need POST/PUT/DELETE/PATCH and no other body";
    if (req->method == HTTP_GET && req->body)
        return "GET request with a body";
    if (req->bearer && req->basic_user)
        return "bearer and basic auth are exclusive";
    if ((req->bearer && has_crlf(req->bearer)) ||
        (req->basic_user && (has_crlf(req->basic_user) || strchr(req->basic_user, ':'))))
        return "invalid credentials (CR/LF or ':' in them)";
    if (req->content_type && has_crlf(req->content_type))
        return "invalid content type";
    for (i = 0; i < req->nheaders; i++) {
        const struct http_header *h = &req->headers[i];
        if (!h->name || !h->value || !*h->name || has_crlf(h->name) || has_crlf(h->value) ||
            strchr(h->name, ':'))
            return "invalid request header (empty, ':' in the name, or CR/LF)";
    }
    return NULL;
}

/* Build the header list (into c->hdr and c->nodes) and the form body (into c->form).
 * Returns 0, or -1 with errstr. */
static int build_request(struct http_client *c, const struct http_request *req,
                         struct curl_slist **list, char *errstr, size_t errsz)
{
    size_t offs[HTTP_MAX_HEADER_NODES], n = 0, i;
    const char *ctype = req->content_type, *why = invalid_request(req);
    int own_ua = 0; /* the caller names its own User-Agent */

    if (why) {
        snprintf(errstr, errsz, "http: %s", why);
        return -1;
    }
    if (add_line(c, offs, &n, "Expect:", NULL, NULL) < 0) /* no 100-continue round trip */
        goto toolong;
    for (i = 0; i < req->nheaders; i++) {
        if (add_line(c, offs, &n, req->headers[i].name, ": ", req->headers[i].value) < 0)
            goto toolong;
        own_ua |= strcasecmp(req->headers[i].name, "User-Agent") == 0;
    }
    if (!own_ua && add_line(c, offs, &n, "User-Agent: ", c->user_agent, NULL) < 0)
        goto toolong;
    for (i = 0; i < req->nform; i++) {
        const struct http_param *p = &req->form[i];
        if (!p->key || !p->value)
            continue;
        if ((c->form.len && sbuf_add(&c->form, "&", 1, HTTP_MAX_FORM_BYTES) < 0) ||
            sbuf_add_escaped(&c->form, p->key, HTTP_MAX_FORM_BYTES) < 0 ||
            sbuf_add(&c->form, "=", 1, HTTP_MAX_FORM_BYTES) < 0 ||
            sbuf_add_escaped(&c->form, p->value, HTTP_MAX_FORM_BYTES) < 0) {
            snprintf(errstr, errsz, "http: form body over %u bytes", HTTP_MAX_FORM_BYTES);
            return -1;
        }
    }
    if (req->nform)
        ctype = "application/x-www-form-urlencoded";
    if ((req->body || req->nform || req->method == HTTP_POST || req->method == HTTP_PUT) &&
        add_line(c, offs, &n, "Content-Type: ", ctype ? ctype : "application/octet-stream", NULL) <
            0)
        goto toolong;
    if (req->bearer && add_line(c, offs, &n, "Authorization: Bearer ", req->bearer, NULL) < 0)
        goto toolong;
    if (req->basic_user) {
        char cred[HTTP_MAX_BASIC_CRED], enc[(HTTP_MAX_BASIC_CRED + 2) / 3 * 4 + 1];
        int len = snprintf(cred, sizeof(cred), "%s:%s", req->basic_user,
                           req->basic_pass ? req->basic_pass : "");
        int bad = len < 0 || (size_t)len >= sizeof(cred);

        if (!bad) {
            b64_encode(enc, (const unsigned char *)cred, (size_t)len);
            bad = add_line(c, offs, &n, "Authorization: Basic ", enc, NULL) < 0;
            explicit_bzero(enc, sizeof(enc));
        }
        explicit_bzero(cred, sizeof(cred));
        if (bad)
            goto toolong;
    }
    /* The buffer may have moved while growing: link the nodes only now. */
    for (i = 0; i < n; i++) {
        c->nodes[i].data = c->hdr.p + offs[i];
        c->nodes[i].next = i + 1 < n ? &c->nodes[i + 1] : NULL;
    }
    *list = &c->nodes[0];
    return 0;
toolong:
    snprintf(errstr, errsz, "http: request headers over %u bytes or credentials too long",
             HTTP_MAX_REQ_HEADER_BYTES);
    return -1;
}

static CURLcode set_method(CURL *h, const struct http_request *req, const char *body, size_t len)
{
    static const char *const custom[] = {NULL, NULL, "PUT", "DELETE", "PATCH"};
    CURLcode rc = curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, custom[req->method]);

    if (rc != CURLE_OK)
        return rc;
    if (req->method == HTTP_GET || (req->method == HTTP_DELETE && !body))
        return curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    /* POST machinery sends the body from memory with a Content-Length, for POST, PUT,
     * DELETE and PATCH alike; CUSTOMREQUEST only changes the verb. Size before pointer. */
    if ((rc = curl_easy_setopt(h, CURLOPT_POST, 1L)) != CURLE_OK ||
        (rc = curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len)) != CURLE_OK)
        return rc;
    return curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
}

/* Replace every occurrence of secret in s (NUL-terminated, in place) with "***". */
static void scrub(char *s, const char *secret)
{
    size_t sl;
    char *p;

    if (!secret || (sl = strlen(secret)) < 3)
        return;
    while ((p = strstr(s, secret)) != NULL) {
        memcpy(p, "***", 3);
        memmove(p + 3, p + sl, strlen(p + sl) + 1);
    }
}

static int64_t parse_retry_after(const char *v)
{
    char *end;
    long long secs;
    time_t when, now;

    if (!v)
        return -1;
    if (isdigit((unsigned char)*v)) {
        errno = 0;
        secs = strtoll(v, &end, 10);
        if (errno || *end || secs > INT64_MAX / 1000)
            return -1;
        return (int64_t)secs * 1000;
    }
    when = curl_getdate(v, NULL);
    if (when == -1)
        return -1;
    now = time(NULL);
    return when > now ? (int64_t)(when - now) * 1000 : 0;
}

static enum http_error classify(CURLcode rc, const struct xfer *x)
{
    if (x->too_big == 1 || x->too_big == 2 || rc == CURLE_FILESIZE_EXCEEDED)
        return HTTP_ETOOBIG;
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
        return HTTP_ECONNECT;
    case CURLE_OPERATION_TIMEDOUT:
        return HTTP_ETIMEOUT;
    default:
        return HTTP_EOTHER;
    }
}

enum http_error http_client_do(struct http_client *c, const struct http_request *req,
                               struct http_response *resp, char *errstr, size_t errsz)
{
    struct xfer x = {.c = c, .r = resp};
    struct curl_slist *list = NULL;
    const char *body = req->body;
    size_t body_len = req->body_len;
    curl_off_t total_us = 0;
    enum http_error err = HTTP_EOTHER;
    CURLcode rc;

    resp->status = 0;
    resp->body_len = 0;
    resp->hdrs_len = 0;
    resp->total_ms = 0;
    resp->retry_after_ms = -1;
    if (resp->body_cap > HTTP_KEEP_BODY_BYTES) {
        free(resp->body);
        resp->body = NULL;
        resp->body_cap = 0;
    }
    spare_adopt(resp);
    if (grow(&resp->body, &resp->body_cap, 1, c->opts.max_body) < 0) {
        snprintf(errstr, errsz, "http: out of memory");
        goto out;
    }
    resp->body[0] = '\0';
    c->errbuf[0] = '\0';
    if (build_request(c, req, &list, errstr, errsz) < 0)
        goto out;
    if (req->nform) {
        body = c->form.p ? c->form.p : "";
        body_len = c->form.len;
    }

    rc = curl_easy_setopt(c->h, CURLOPT_URL, req->url);
    if (rc == CURLE_OK)
        rc = set_method(c->h, req, body, body_len);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, list);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(c->h, CURLOPT_TIMEOUT_MS,
                              req->timeout_ms > 0 ? req->timeout_ms : c->opts.timeout_ms);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(c->h, CURLOPT_WRITEDATA, &x);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(c->h, CURLOPT_HEADERDATA, &x);
    if (rc == CURLE_OK)
        rc = curl_easy_perform(c->h);
    curl_easy_getinfo(c->h, CURLINFO_TOTAL_TIME_T, &total_us);
    resp->total_ms = (int64_t)(total_us / 1000);
    /* The list points into c->hdr: unhook it before the buffer is reused or freed. */
    curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, NULL);

    if (rc == CURLE_OK && !x.too_big) {
        long status = 0;
        curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status);
        resp->status = status;
        resp->retry_after_ms = parse_retry_after(http_response_header(resp, "Retry-After"));
        err = HTTP_OK;
        goto out;
    }
    err = classify(rc, &x);
    if (x.too_big == 1 || rc == CURLE_FILESIZE_EXCEEDED)
        snprintf(errstr, errsz, "too big: response body over %zu bytes", c->opts.max_body);
    else if (x.too_big == 2)
        snprintf(errstr, errsz, "too big: response headers over %zu bytes",
                 c->opts.max_header_bytes);
    else if (x.too_big == 3)
        snprintf(errstr, errsz, "other: out of memory reading the response");
    else if (rc == CURLE_ABORTED_BY_CALLBACK)
        snprintf(errstr, errsz, "other: aborted");
    else
        snprintf(errstr, errsz, "%s: %s", http_error_str(err),
                 c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc));
    if (errsz > 0) {
        scrub(errstr, req->bearer);
        scrub(errstr, req->basic_pass);
    }
    resp->body_len = 0;
    resp->body[0] = '\0';
    resp->hdrs_len = 0;
out:
    sbuf_wipe(&c->hdr);
    sbuf_wipe(&c->form);
    resp->error = err;
    return err;
}
