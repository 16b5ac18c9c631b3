/* connect_page.c - HTML pages and form fields of the connect flows (see connect_page.h).
 *
 * The builder is a capped growable buffer that records its first failure and keeps
 * going, so a handler writes a page top to bottom and checks once at the end
 * (connect_page_take), the way jbuf works for JSON.
 */
#include "worker/connect_page.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"

/* The pages' one stylesheet, inline: the policy admits it by its hash alone, so no other
 * style (and no script at all) can run even if markup were injected. */
static const char css[] =
    "body{font:15px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;"
    "color:#1f2933}h1{font-size:1.5rem}h2{font-size:1.15rem;margin:0 0 .5rem}"
    "section.company{border:1px solid #cbd2d9;border-radius:6px;padding:1rem;margin:1rem 0}"
    "dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;margin:0 0 1rem}"
    "dt{color:#52606d}dd{margin:0}label{display:block;margin:.4rem 0}"
    "input{display:block;width:100%;box-sizing:border-box;padding:.35rem;font:inherit}"
    "button,a#connect,a#settings{font:inherit;padding:.4rem .9rem;border-radius:4px;"
    "border:1px solid #0b6e4f;background:#0b6e4f;color:#fff;text-decoration:none;"
    "display:inline-block;margin-top:.5rem;cursor:pointer}"
    "form.disconnect button,button#signout{background:#fff;color:#b42318;border-color:#b42318}"
    ".ok{color:#0b6e4f}.warn{color:#b54708}.bad{color:#b42318}"
    "p#notice{border-left:4px solid #0b6e4f;padding-left:.6rem}";

static char csp[256];
static pthread_once_t csp_once = PTHREAD_ONCE_INIT;

static void csp_init(void)
{
    unsigned char d[HASH_SHA256_LEN];
    char b64[HASH_B64_LEN(HASH_SHA256_LEN) + 1];

    if (hash_sha256(css, sizeof css - 1, d) < 0 || hash_base64(d, sizeof d, b64, sizeof b64) < 0)
        b64[0] = '\0'; /* no hash: no style, the pages still work */
    snprintf(csp, sizeof csp,
             "default-src 'none'; style-src 'sha256-%s'; form-action 'self'; "
             "frame-ancestors 'none'; base-uri 'none'",
             b64);
}

static struct connect_header headers[] = {
    {"Content-Type", "text/html; charset=utf-8"},
    {"Content-Security-Policy", csp},
    {"X-Frame-Options", "DENY"},
    {"Referrer-Policy", "no-referrer"},
    {"Cache-Control", "no-store"},
    {"X-Content-Type-Options", "nosniff"},
};

const struct connect_header *connect_page_headers(size_t *n)
{
    pthread_once(&csp_once, csp_init);
    *n = sizeof headers / sizeof *headers;
    return headers;
}

/* ---- the builder --------------------------------------------------------------------- */

static void put(struct connect_page *p, const char *s, size_t n)
{
    char *b;
    size_t cap;

    if (p->err)
        return;
    if (p->len + n + 1 > CONNECT_PAGE_MAX) {
        p->err = 1;
        return;
    }
    if (p->len + n + 1 > p->cap) {
        cap = p->cap ? p->cap * 2 : 2048;
        while (cap < p->len + n + 1)
            cap *= 2;
        if (!(b = realloc(p->buf, cap))) {
            p->err = 1;
            return;
        }
        p->buf = b;
        p->cap = cap;
    }
    memcpy(p->buf + p->len, s, n);
    p->len += n;
    p->buf[p->len] = '\0';
}

static void put_escaped(struct connect_page *p, const char *s, size_t n)
{
    size_t run = 0;

    for (size_t i = 0; i < n; i++) {
        const char *e = s[i] == '&'    ? "&amp;"
                        : s[i] == '<'  ? "&lt;"
                        : s[i] == '>'  ? "&gt;"
                        : s[i] == '"'  ? "&quot;"
                        : s[i] == '\'' ? "&#39;"
                                       : NULL;
        if (!e)
            continue;
        put(p, s + run, i - run);
        put(p, e, strlen(e));
        run = i + 1;
    }
    put(p, s + run, n - run);
}

static void put_vtext(struct connect_page *p, const char *fmt, va_list ap)
{
    char small[1024], *big = NULL;
    va_list ap2;
    int n;

    va_copy(ap2, ap);
    n = vsnprintf(small, sizeof small, fmt, ap);
    if (n >= 0 && (size_t)n < sizeof small)
        put_escaped(p, small, (size_t)n);
    else if (n >= 0 && (size_t)n < CONNECT_PAGE_MAX && (big = malloc((size_t)n + 1)) != NULL)
        put_escaped(p, big, (size_t)vsnprintf(big, (size_t)n + 1, fmt, ap2));
    else
        p->err = 1;
    free(big);
    va_end(ap2);
}

void connect_page_open(struct connect_page *p, const char *title)
{
    memset(p, 0, sizeof *p);
    connect_page_html(p,
                      "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                      "<style>");
    connect_page_html(p, css);
    connect_page_html(p, "</style>\n<title>");
    connect_page_text(p, "%s", title);
    connect_page_html(p, "</title>\n</head>\n<body>\n<h1 id=\"title\">");
    connect_page_text(p, "%s", title);
    connect_page_html(p, "</h1>\n");
}

void connect_page_html(struct connect_page *p, const char *html)
{
    put(p, html, strlen(html));
}

void connect_page_text(struct connect_page *p, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    put_vtext(p, fmt, ap);
    va_end(ap);
}

void connect_page_para(struct connect_page *p, const char *fmt, ...)
{
    va_list ap;

    connect_page_html(p, "<p>");
    va_start(ap, fmt);
    put_vtext(p, fmt, ap);
    va_end(ap);
    connect_page_html(p, "</p>\n");
}

void connect_page_hidden(struct connect_page *p, const char *name, const char *value)
{
    connect_page_html(p, "<input type=\"hidden\" name=\"");
    connect_page_text(p, "%s", name);
    connect_page_html(p, "\" value=\"");
    connect_page_text(p, "%s", value ? value : "");
    connect_page_html(p, "\">\n");
}

void connect_page_close(struct connect_page *p)
{
    connect_page_html(p, "</body>\n</html>\n");
}

int connect_page_take(struct connect_page *p, char **html, size_t *len)
{
    if (p->err || !p->buf) {
        connect_page_release(p);
        return -1;
    }
    *html = p->buf;
    *len = p->len;
    memset(p, 0, sizeof *p);
    return 0;
}

void connect_page_release(struct connect_page *p)
{
    if (!p)
        return;
    free(p->buf);
    memset(p, 0, sizeof *p);
}

/* ---- forms ----------------------------------------------------------------------------- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes s[0..n) into out (outsz bytes, NUL-terminated). The length, or -1 (a bad
 * escape, a NUL, too long). With out NULL only checks. */
static long decode(const char *s, size_t n, char *out, size_t outsz)
{
    size_t o = 0;

    if (out && outsz == 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];

        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int hi = n - i < 3 ? -1 : hexval(s[i + 1]), lo = n - i < 3 ? -1 : hexval(s[i + 2]);

            if (hi < 0 || lo < 0)
                return -1;
            c = hi * 16 + lo;
            i += 2;
        }
        if (c == 0)
            return -1;
        if (out) {
            if (o + 1 >= outsz)
                return -1;
            out[o] = (char)c;
        }
        o++;
    }
    if (out)
        out[o] = '\0';
    return (long)o;
}

/* 1 when the name s[0..n) decodes to key. */
static int name_is(const char *s, size_t n, const char *key)
{
    char name[64];
    long l = decode(s, n, name, sizeof name);

    return l >= 0 && strcmp(name, key) == 0;
}

int connect_form_get(const char *s, size_t len, const char *key, char *out, size_t outsz)
{
    int found = 0;
    size_t i = 0;

    if (outsz)
        out[0] = '\0';
    while (s && i < len) {
        const char *pair = s + i, *amp = memchr(pair, '&', len - i), *eq;
        size_t pl = amp ? (size_t)(amp - pair) : len - i, nl;

        i += pl + 1;
        if (pl == 0)
            continue;
        eq = memchr(pair, '=', pl);
        nl = eq ? (size_t)(eq - pair) : pl;
        if (decode(pair, nl, NULL, 0) < 0 || (eq && decode(eq + 1, pl - nl - 1, NULL, 0) < 0))
            return -1;
        if (!name_is(pair, nl, key))
            continue;
        if (found++)
            return -1;
        if (decode(eq ? eq + 1 : pair + pl, eq ? pl - nl - 1 : 0, out, outsz) < 0)
            return -1;
    }
    return found;
}
