/* options_fetch.c - HubSpot's options fetch and option lists (see options_fetch.h).
 *
 * The body is read from a tape (common/jtape.h): strict JSON, two allocations, no json-c
 * tree for a request that is mostly thrown away. The rules are HubSpot's shape and
 * nothing more: every member we read is type-checked and bounded, every member we do
 * not read is ignored, so a new field on HubSpot's side never breaks the dropdowns.
 *
 * A list is an array of heap-copied strings. The same list is what QuickBooks gave (after
 * the caller turned rows into options), what the cache holds (options_list_dump/load) and
 * what a page is cut from, so a cache hit and a miss answer byte for byte alike.
 */
#include "worker/options_fetch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/jtape.h"
#include "common/utf8.h"

#define REQ_DEPTH   16 /* nesting accepted in a request (inputFields values are objects) */
#define CACHE_DEPTH 3

/* ---- the request ------------------------------------------------------------------- */

static int fail(char *errstr, size_t errsz, const char *what, enum jget_status st)
{
    snprintf(errstr, errsz, "%s is %s", what, st == JGET_MISSING ? "missing" : jget_status_str(st));
    return -1;
}

/* inputFields.qbo_realm_id: a plain string or {"type":"STATIC_VALUE","value":"…"}. */
static void read_realm(const struct jtape *t, size_t fields, struct options_request *r)
{
    size_t v = jtape_member(t, fields, OPTIONS_REALM_FIELD), n;
    const char *s = NULL, *type = NULL;
    enum jget_status st;

    r->realm_state = OPTIONS_REALM_NONE;
    if (v && t->n[v].type == JT_OBJECT) {
        if (jtape_get_str(t, v, "type", &type) == JGET_OK && strcmp(type, "STATIC_VALUE") != 0)
            return; /* a property or an earlier action's output: known when the flow runs */
        v = jtape_member(t, v, "value");
    }
    if (!v || (st = jtape_val_str(t, v, &s)) == JGET_MISSING)
        return;
    if (st != JGET_OK) {
        r->realm_state = OPTIONS_REALM_BAD;
        return;
    }
    if (!*s)
        return;
    n = strspn(s, "0123456789");
    if (s[n] != 0 || n > OPTIONS_REALM_MAX) {
        r->realm_state = OPTIONS_REALM_BAD;
        return;
    }
    memcpy(r->realm, s, n + 1);
    r->realm_state = OPTIONS_REALM_OK;
}

/* fetchOptions.after: a decimal string ("" = 0) or a JSON integer, 0..OPTIONS_MAX. */
static int read_after(const struct jtape *t, size_t fetch, size_t *after, char *errstr,
                      size_t errsz)
{
    const char *s;
    int64_t v = 0;
    enum jget_status st = jtape_get_str(t, fetch, "after", &s);

    if (st == JGET_MISSING)
        return 0;
    if (st == JGET_OK && !*s)
        return 0;
    st = jtape_get_int64_lenient(t, fetch, "after", 0, OPTIONS_MAX, &v);
    if (st != JGET_OK) {
        snprintf(errstr, errsz, "fetchOptions.after is not a paging offset of ours (0..%d)",
                 OPTIONS_MAX);
        return -1;
    }
    *after = (size_t)v;
    return 0;
}

static int read_fetch(const struct jtape *t, struct options_request *r, char *errstr, size_t errsz)
{
    size_t fetch = 0, qlen = 0;
    const char *q = NULL;
    enum jget_status st = jtape_get_obj(t, JTAPE_ROOT, "fetchOptions", &fetch);

    if (st == JGET_MISSING)
        return 0;
    if (st != JGET_OK)
        return fail(errstr, errsz, "fetchOptions", st);
    st = jtape_get_strn(t, fetch, "q", &q, &qlen);
    if (st == JGET_OK) {
        if (qlen > OPTIONS_Q_MAX || memchr(q, 0, qlen)) {
            snprintf(errstr, errsz, "fetchOptions.q is longer than %d bytes or holds U+0000",
                     OPTIONS_Q_MAX);
            return -1;
        }
        memcpy(r->q, q, qlen + 1);
    } else if (st != JGET_MISSING) {
        return fail(errstr, errsz, "fetchOptions.q", st);
    }
    return read_after(t, fetch, &r->after, errstr, errsz);
}

static int read_request(const struct jtape *t, struct options_request *r, char *errstr,
                        size_t errsz)
{
    size_t origin = 0, fields = 0, flen = 0;
    const char *field = NULL;
    enum jget_status st;

    if (t->n[JTAPE_ROOT].type != JT_OBJECT) {
        snprintf(errstr, errsz, "the body is not a JSON object");
        return -1;
    }
    if ((st = jtape_get_strn(t, JTAPE_ROOT, "inputFieldName", &field, &flen)) != JGET_OK)
        return fail(errstr, errsz, "inputFieldName", st);
    if (flen == 0 || flen > OPTIONS_FIELD_MAX || memchr(field, 0, flen)) {
        snprintf(errstr, errsz, "inputFieldName must be 1..%d bytes", OPTIONS_FIELD_MAX);
        return -1;
    }
    memcpy(r->field, field, flen + 1);
    if ((st = jtape_get_obj(t, JTAPE_ROOT, "origin", &origin)) != JGET_OK)
        return fail(errstr, errsz, "origin", st);
    if ((st = jtape_get_int64_lenient(t, origin, "portalId", 1, INT64_MAX, &r->portal_id)) !=
        JGET_OK)
        return fail(errstr, errsz, "origin.portalId", st);
    st = jtape_get_obj(t, JTAPE_ROOT, "inputFields", &fields);
    if (st == JGET_OK)
        read_realm(t, fields, r);
    else if (st != JGET_MISSING)
        return fail(errstr, errsz, "inputFields", st);
    return read_fetch(t, r, errstr, errsz);
}

int options_request_parse(const char *body, size_t len, struct options_request *out, char *errstr,
                          size_t errsz)
{
    struct jtape t = {0};
    struct options_request r;
    char e[128];
    int rc;

    if (!body || len == 0) {
        snprintf(errstr, errsz, "the body is empty");
        return -1;
    }
    if (len > OPTIONS_BODY_MAX) {
        snprintf(errstr, errsz, "the body is larger than %u bytes", OPTIONS_BODY_MAX);
        return -1;
    }
    if (jtape_parse(&t, body, len, REQ_DEPTH, e, sizeof e) < 0) {
        snprintf(errstr, errsz, "the body is not JSON: %s", e);
        return -1;
    }
    memset(&r, 0, sizeof r);
    rc = read_request(&t, &r, errstr, errsz);
    jtape_release(&t);
    if (rc == 0)
        *out = r;
    return rc;
}

/* ---- lists ------------------------------------------------------------------------- */

void options_list_init(struct options_list *l)
{
    memset(l, 0, sizeof *l);
}

void options_list_release(struct options_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].label);
        free(l->v[i].value);
        free(l->v[i].desc);
    }
    free(l->v);
    options_list_init(l);
}

/* A NUL-terminated copy of s cut to max bytes on a character boundary, or NULL. */
static char *cut_dup(const char *s, size_t max)
{
    return strndup(s, utf8_cut_len(s, strlen(s), max));
}

int options_list_add(struct options_list *l, const char *label, const char *value, const char *desc)
{
    struct option_item it;

    if (l->n == OPTIONS_MAX || !label || !*label || !value || !*value ||
        strlen(value) > OPTIONS_VALUE_MAX)
        return 1;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        struct option_item *v = realloc(l->v, (cap > OPTIONS_MAX ? OPTIONS_MAX : cap) * sizeof *v);
        if (!v)
            return -1;
        l->v = v;
        l->cap = cap > OPTIONS_MAX ? OPTIONS_MAX : cap;
    }
    it.label = cut_dup(label, OPTIONS_LABEL_MAX);
    it.value = strdup(value);
    it.desc = cut_dup(desc ? desc : "", OPTIONS_DESC_MAX);
    if (!it.label || !it.value || !it.desc) {
        free(it.label);
        free(it.value);
        free(it.desc);
        return -1;
    }
    l->v[l->n++] = it;
    return 0;
}

static int ascii_lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static int ascii_casecmp(const char *a, const char *b)
{
    for (; *a && ascii_lower((unsigned char)*a) == ascii_lower((unsigned char)*b); a++, b++)
        ;
    return ascii_lower((unsigned char)*a) - ascii_lower((unsigned char)*b);
}

static int item_cmp(const void *pa, const void *pb)
{
    const struct option_item *a = pa, *b = pb;
    int c = ascii_casecmp(a->label, b->label);
    return c ? c : strcmp(a->value, b->value);
}

void options_list_sort(struct options_list *l)
{
    if (l->n > 1)
        qsort(l->v, l->n, sizeof *l->v, item_cmp);
}

/* 1 when hay contains needle, ASCII letters compared without case ("" is everywhere).
 * Bytes of multi-byte characters compare exactly, so a match never starts or ends inside
 * a character that the needle does not also hold whole. */
static int contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);

    if (n == 0)
        return 1;
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] &&
               ascii_lower((unsigned char)hay[i]) == ascii_lower((unsigned char)needle[i]))
            i++;
        if (i == n)
            return 1;
    }
    return 0;
}

void options_list_dump(const struct options_list *l, struct jbuf *jb)
{
    jbuf_arr_open(jb);
    for (size_t i = 0; i < l->n; i++) {
        jbuf_arr_open(jb);
        jbuf_str(jb, l->v[i].label);
        jbuf_str(jb, l->v[i].value);
        jbuf_str(jb, l->v[i].desc);
        jbuf_arr_close(jb);
    }
    jbuf_arr_close(jb);
}

/* One cached [label, value, desc] at node i into l; 0, or -1 (bad entry or no memory). */
static int load_item(struct options_list *l, const struct jtape *t, size_t i)
{
    const char *s[3];
    size_t k, j;

    if (t->n[i].type != JT_ARRAY || t->n[i].count != 3)
        return -1;
    for (k = 0, j = i + 1; k < 3; k++, j = t->n[j].next)
        if (jtape_val_str(t, j, &s[k]) != JGET_OK)
            return -1;
    if (strlen(s[0]) > OPTIONS_LABEL_MAX || strlen(s[2]) > OPTIONS_DESC_MAX)
        return -1;
    return options_list_add(l, s[0], s[1], s[2]) == 0 ? 0 : -1;
}

int options_list_load(struct options_list *l, const char *text, size_t len, char *errstr,
                      size_t errsz)
{
    struct jtape t = {0};
    size_t i, k;
    int rc = -1;

    if (jtape_parse(&t, text, len, CACHE_DEPTH, errstr, errsz) < 0)
        return -1;
    if (t.n[JTAPE_ROOT].type != JT_ARRAY || t.n[JTAPE_ROOT].count > OPTIONS_MAX) {
        snprintf(errstr, errsz, "not an option list");
        goto out;
    }
    for (i = JTAPE_ROOT + 1, k = 0; k < t.n[JTAPE_ROOT].count; k++, i = t.n[i].next)
        if (load_item(l, &t, i) < 0) {
            snprintf(errstr, errsz, "option %zu is not [label, value, description]", k);
            goto out;
        }
    rc = 0;
out:
    jtape_release(&t);
    if (rc < 0)
        options_list_release(l);
    return rc;
}

void options_list_page(const struct options_list *l, const char *q, size_t after, struct jbuf *jb)
{
    size_t matched = 0, shown = 0;

    if (!q)
        q = "";
    jbuf_obj_open(jb);
    jbuf_key(jb, "options");
    jbuf_arr_open(jb);
    for (size_t i = 0; i < l->n; i++) {
        if (!contains_ci(l->v[i].label, q))
            continue;
        if (matched++ < after || shown == OPTIONS_PAGE)
            continue;
        shown++;
        jbuf_obj_open(jb);
        jbuf_kv_str(jb, "label", l->v[i].label);
        jbuf_kv_str(jb, "value", l->v[i].value);
        if (l->v[i].desc[0])
            jbuf_kv_str(jb, "description", l->v[i].desc);
        jbuf_obj_close(jb);
    }
    jbuf_arr_close(jb);
    if (matched > after + shown && shown == OPTIONS_PAGE) {
        char next[24];
        snprintf(next, sizeof next, "%zu", after + shown);
        jbuf_kv_str(jb, "after", next);
    }
    jbuf_kv_bool(jb, "searchable", 1);
    jbuf_obj_close(jb);
}
