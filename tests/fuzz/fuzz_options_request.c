/* fuzz_options_request.c - libFuzzer target for the options endpoint's pure half
 * (worker/options_fetch.h): HubSpot's options fetch, and the cached option lists.
 *
 * Request bodies come from the internet (signed, but by whoever holds the app secret) and
 * cache entries from Redis, so both must end as a 400 / a cache miss, never a crash.
 * Beyond "no crash, no leak" this checks on every input:
 *   - a parsed request keeps its contract: a field name of 1..OPTIONS_FIELD_MAX bytes, a
 *     portal >= 1, after <= OPTIONS_MAX, a realm of digits exactly when it is OK, and a
 *     failure leaves the output untouched with a reason behind;
 *   - bytes that load as a cache list are within the limits, dump back to text that loads
 *     again to the same list, and every page of it (searched with the request's q when
 *     there is one) is strict JSON naming at most OPTIONS_PAGE options.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "worker/options_fetch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_request(const struct options_request *r)
{
    size_t n = strlen(r->field);

    if (n == 0 || n > OPTIONS_FIELD_MAX || r->portal_id < 1 || r->after > OPTIONS_MAX ||
        strlen(r->q) > OPTIONS_Q_MAX)
        abort();
    n = strlen(r->realm);
    if (r->realm_state == OPTIONS_REALM_OK) {
        if (n == 0 || n > OPTIONS_REALM_MAX || strspn(r->realm, "0123456789") != n)
            abort();
    } else if (n != 0) {
        abort();
    }
}

/* Every page of l is strict JSON with at most OPTIONS_PAGE options. */
static void check_pages(const struct options_list *l, const char *q)
{
    for (size_t after = 0; after <= l->n; after += OPTIONS_PAGE) {
        struct jbuf jb;
        struct json_object *doc, *arr;
        char e[128];

        jbuf_init(&jb, 0);
        options_list_page(l, q, after, &jb);
        if (jb.err || !(doc = json_parse_strict(jb.buf, jb.len, 0, e, sizeof e)))
            abort();
        if (json_get_array(doc, "options", &arr) != JGET_OK ||
            json_object_array_length(arr) > OPTIONS_PAGE)
            abort();
        json_object_put(doc);
        jbuf_release(&jb);
    }
}

static void check_list(const uint8_t *data, size_t size, const char *q)
{
    struct options_list l, again;
    struct jbuf jb;
    char e[128];

    options_list_init(&l);
    options_list_init(&again);
    if (options_list_load(&l, (const char *)data, size, e, sizeof e) < 0) {
        if (l.n != 0 || e[0] == 0)
            abort();
        return;
    }
    jbuf_init(&jb, 0);
    options_list_dump(&l, &jb);
    if (jb.err || options_list_load(&again, jb.buf, jb.len, e, sizeof e) < 0 || again.n != l.n)
        abort();
    for (size_t i = 0; i < l.n; i++)
        if (strlen(l.v[i].label) > OPTIONS_LABEL_MAX || strlen(l.v[i].value) > OPTIONS_VALUE_MAX ||
            strcmp(l.v[i].label, again.v[i].label) || strcmp(l.v[i].value, again.v[i].value) ||
            strcmp(l.v[i].desc, again.v[i].desc))
            abort();
    options_list_sort(&l);
    check_pages(&l, q);
    jbuf_release(&jb);
    options_list_release(&again);
    options_list_release(&l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct options_request r;
    char err[OPTIONS_ERR_MAX];

    memset(&r, 0xA5, sizeof r);
    err[0] = 0;
    if (options_request_parse((const char *)data, size, &r, err, sizeof err) == 0) {
        check_request(&r);
    } else if (((unsigned char *)&r)[0] != 0xA5 || err[0] == 0) {
        abort();
    }
    check_list(data, size, r.q[0] != (char)0xA5 ? r.q : "");
    return 0;
}
