/* connect_page.h - the HTML pages and forms of the connect flows: escaping, a bounded
 * page builder, the security headers every page carries, and the reader of query strings
 * and application/x-www-form-urlencoded bodies. Pure: no I/O.
 *
 * Owns: a struct connect_page's buffer (until the caller takes it), nothing else.
 *
 * Pages are plain server-rendered HTML without scripts or images and with one inline
 * stylesheet of ours, so their Content-Security-Policy is default-src 'none' with that
 * stylesheet admitted by its SHA-256 alone (forms post to the same origin: form-action
 * 'self'). Every untrusted byte (what Intuit or HubSpot sent, a company
 * name, a parameter) enters a page through connect_page_text(), which escapes & < > " '.
 *
 * Thread-safety: none needed; a page belongs to its builder.
 */
#ifndef HSQB_CONNECT_PAGE_H
#define HSQB_CONNECT_PAGE_H

#include <stdarg.h>
#include <stddef.h>

#define CONNECT_PAGE_MAX  (64u * 1024) /* bytes of one page; more fails the page */
#define CONNECT_FIELD_MAX 2048         /* bytes of one decoded form or query value */

/* The headers of every page and redirect of the connect flows (name, value). */
struct connect_header {
    const char *name;
    const char *value;
};
/* The array and its length; static, never freed. */
const struct connect_header *connect_page_headers(size_t *n);

struct connect_page {
    char *buf; /* NUL-terminated HTML; owned until taken */
    size_t len, cap;
    int err; /* set when the page outgrew CONNECT_PAGE_MAX or memory ran out */
};

/* Starts a page: doctype, head with the escaped title, body, and the title as h1. */
void connect_page_open(struct connect_page *p, const char *title);
/* Trusted markup (a literal of ours), as it is. */
void connect_page_html(struct connect_page *p, const char *html);
/* Text: printf-formatted, then every byte escaped (& < > " '), so an argument can never
 * become markup. */
void connect_page_text(struct connect_page *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* <p>text</p> with the text escaped as above. */
void connect_page_para(struct connect_page *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A hidden form field, name and value escaped. */
void connect_page_hidden(struct connect_page *p, const char *name, const char *value);
/* Closes the body and the document. */
void connect_page_close(struct connect_page *p);
/* The finished page: 0 with *html (caller frees) and *len, the builder emptied; -1 when
 * it failed (p->err), p released. */
int connect_page_take(struct connect_page *p, char **html, size_t *len);
/* Frees what p holds. NULL-safe; p may be reused after connect_page_open(). */
void connect_page_release(struct connect_page *p);

/* The value of key in s[0..len), a query string or form body (name=value pairs joined by
 * '&', '+' for a space, %XX escapes), decoded into out (NUL-terminated). 1 when found, 0
 * when absent, -1 when s is malformed (a bad escape), the value holds a NUL or does not
 * fit outsz, or key appears more than once (a second copy could be what another part of
 * a chain reads). s is untrusted: fuzzed by tests/fuzz/fuzz_connect_state.c. */
int connect_form_get(const char *s, size_t len, const char *key, char *out, size_t outsz);

#endif
