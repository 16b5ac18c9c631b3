/* options_fetch.h - the pure half of the options endpoint (worker/ingress_options.h):
 * HubSpot's options fetch as a request struct, and an option list with what is done to
 * it (search, paging, the cache text). No I/O, so the body parsing and the list code are
 * fuzzed on their own (tests/fuzz/fuzz_options_request.c).
 *
 * Owns: struct options_request (plain data) and struct options_list (its strings, freed by
 * options_list_release()).
 *
 * The request (fields we do not read, such as objectTypeId, are ignored):
 *   {"origin":{"portalId":N,...},                  required; portalId integer or string
 *    "inputFieldName":"payment_terms",             required, 1..OPTIONS_FIELD_MAX bytes
 *    "inputFields":{"qbo_realm_id":{"type":"STATIC_VALUE","value":"123"}, ...},  optional
 *    "fetchOptions":{"q":"net","after":"50"}}      optional; q <= OPTIONS_Q_MAX bytes,
 *                                                  after a decimal offset 0..OPTIONS_MAX
 * qbo_realm_id may also be a plain string. Absent, null, "", or typed other than
 * STATIC_VALUE (a value HubSpot only knows when the workflow runs) is "not chosen".
 *
 * Lists: at most OPTIONS_MAX options; labels and descriptions are cut to their maximum on a
 * UTF-8 boundary, a value is never cut (it is what the action will look up), so a value
 * over OPTIONS_VALUE_MAX is refused and the caller picks another (an Id). Search keeps the
 * options whose label contains q, ASCII letters compared without case; a page is
 * OPTIONS_PAGE options from the decimal offset `after`, and names the next offset only when
 * more options match.
 *
 * Thread-safety: pure functions; a list is used by one thread at a time.
 */
#ifndef HSQB_OPTIONS_FETCH_H
#define HSQB_OPTIONS_FETCH_H

#include <stddef.h>
#include <stdint.h>

#include "common/json.h"

/* A value is never cut: past OPTIONS_VALUE_MAX bytes the caller offers an Id instead
 * (EVENT_NAME_MAX code points of ASCII fit; the actions refuse longer names anyway). */
#define OPTIONS_MAX         1000       /* options in one list */
#define OPTIONS_PAGE        50         /* options in one answer */
#define OPTIONS_LABEL_MAX   200        /* bytes of a label */
#define OPTIONS_VALUE_MAX   500        /* bytes of a value */
#define OPTIONS_DESC_MAX    200        /* bytes of a description */
#define OPTIONS_FIELD_MAX   64         /* bytes of inputFieldName */
#define OPTIONS_Q_MAX       200        /* bytes of fetchOptions.q */
#define OPTIONS_REALM_MAX   32         /* digits of a realm id (OAUTH_REALM_MAX) */
#define OPTIONS_BODY_MAX    (1u << 20) /* bytes of a request body parsed */
#define OPTIONS_ERR_MAX     160        /* errstr room callers give options_request_parse */
#define OPTIONS_REALM_FIELD "qbo_realm_id"

enum options_realm {
    OPTIONS_REALM_NONE = 0, /* not chosen (see above) */
    OPTIONS_REALM_OK,       /* realm holds 1..OPTIONS_REALM_MAX digits */
    OPTIONS_REALM_BAD,      /* a static value that is no realm id */
};

struct options_request {
    int64_t portal_id;
    char field[OPTIONS_FIELD_MAX + 1];
    enum options_realm realm_state;
    char realm[OPTIONS_REALM_MAX + 1]; /* "" unless OPTIONS_REALM_OK */
    char q[OPTIONS_Q_MAX + 1];         /* "" = no search */
    size_t after;                      /* 0..OPTIONS_MAX */
};

/* Parse body (len bytes, no NUL needed) into *out. 0, or -1 with errstr saying what makes
 * it no options fetch (the 400 answer's message; quotes no more than a short, sanitised
 * piece of the body). *out is set only on 0. */
int options_request_parse(const char *body, size_t len, struct options_request *out, char *errstr,
                          size_t errsz);

struct option_item {
    char *label, *value, *desc; /* desc "" when none */
};

struct options_list {
    struct option_item *v;
    size_t n, cap;
};

void options_list_init(struct options_list *l);
/* Free every string and the array; l is empty (and may be reused) afterwards. */
void options_list_release(struct options_list *l);

/* Append a copy of one option: label (NULL or "" refused) and desc (NULL: "") cut to their
 * maximum, value copied whole. 0 added; 1 not added: the list is full, or value is NULL,
 * "" or longer than OPTIONS_VALUE_MAX (the caller may offer another value); -1 out of
 * memory. */
int options_list_add(struct options_list *l, const char *label, const char *value,
                     const char *desc);

/* Sort by label (ASCII letters without case), then by value: the editor's order. */
void options_list_sort(struct options_list *l);

/* The cache text of l into jb: [[label,value,desc],...]. Check jb->err afterwards. */
void options_list_dump(const struct options_list *l, struct jbuf *jb);

/* Read cache text written by options_list_dump() into l (empty): 0, or -1 with errstr when
 * it is not such a list within the limits (l is then empty). */
int options_list_load(struct options_list *l, const char *text, size_t len, char *errstr,
                      size_t errsz);

/* The answer to a fetch with search text q (NULL or "": all) from offset after:
 *   {"options":[{"label":…,"value":…,"description":…},...],"after":"<next>","searchable":true}
 * ("description" only when the option has one, "after" only when more match). Check
 * jb->err afterwards. */
void options_list_page(const struct options_list *l, const char *q, size_t after, struct jbuf *jb);

#endif
