/* test_connect_page.c - the connect flows' pages and form fields (worker/connect_page.c):
 * what a page shows can never become markup, however hostile the text (a company name, an
 * error Intuit sent back); a page past its bound fails instead of being cut; query strings
 * and form bodies decode as browsers encode them, and a malformed or doubled parameter is
 * refused rather than guessed at. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/hash.h"
#include "worker/connect_page.h"

static void test_page_escapes_every_text(void **state)
{
    struct connect_page p;
    char *html = NULL;
    size_t len = 0, nh;
    const struct connect_header *h = connect_page_headers(&nh);
    (void)state;

    connect_page_open(&p, "Connected <Acme & \"Sons\">");
    connect_page_para(&p, "Company %s (realm %s)", "<script>alert('x')</script>", "42");
    connect_page_html(&p, "<form method=\"post\">");
    connect_page_hidden(&p, "realm", "\"><img src=x>");
    connect_page_html(&p, "</form>");
    connect_page_close(&p);
    assert_int_equal(connect_page_take(&p, &html, &len), 0);
    assert_int_equal(strlen(html), len);
    assert_non_null(strstr(html, "<title>Connected &lt;Acme &amp; &quot;Sons&quot;&gt;</title>"));
    assert_non_null(
        strstr(html, "<p>Company &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; (realm 42)</p>"));
    assert_non_null(strstr(html, "name=\"realm\" value=\"&quot;&gt;&lt;img src=x&gt;\""));
    assert_null(strstr(html, "<script"));
    assert_null(strstr(html, "<img"));

    /* the page's one stylesheet is the one the policy admits by its hash */
    {
        const char *a = strstr(html, "<style>"), *b = a ? strstr(a, "</style>") : NULL;
        unsigned char d[HASH_SHA256_LEN];
        char b64[HASH_B64_LEN(HASH_SHA256_LEN) + 1], want[128];
        const char *policy = NULL;

        assert_non_null(b);
        a += strlen("<style>");
        assert_int_equal(hash_sha256(a, (size_t)(b - a), d), 0);
        assert_int_equal(hash_base64(d, sizeof d, b64, sizeof b64), 0);
        snprintf(want, sizeof want, "style-src 'sha256-%s';", b64);
        for (size_t i = 0; i < nh; i++)
            if (strcmp(h[i].name, "Content-Security-Policy") == 0)
                policy = h[i].value;
        assert_non_null(policy);
        assert_non_null(strstr(policy, want));
        assert_null(strstr(policy, "unsafe"));
        assert_null(strstr(b, "<style")); /* only one */
    }
    free(html);

    /* the headers every page carries */
    int csp = 0, xfo = 0, ref = 0, store = 0;
    for (size_t i = 0; i < nh; i++) {
        csp |= strcmp(h[i].name, "Content-Security-Policy") == 0 &&
               strncmp(h[i].value, "default-src 'none'", 18) == 0;
        xfo |= strcmp(h[i].name, "X-Frame-Options") == 0 && strcmp(h[i].value, "DENY") == 0;
        ref |= strcmp(h[i].name, "Referrer-Policy") == 0 && strcmp(h[i].value, "no-referrer") == 0;
        store |= strcmp(h[i].name, "Cache-Control") == 0 && strcmp(h[i].value, "no-store") == 0;
    }
    assert_true(csp && xfo && ref && store);
}

static void test_page_over_its_bound_fails(void **state)
{
    struct connect_page p;
    char *html = NULL, *big = malloc(CONNECT_PAGE_MAX);
    size_t len;
    (void)state;

    assert_non_null(big);
    memset(big, '&', CONNECT_PAGE_MAX - 1); /* 5 bytes each once escaped */
    big[CONNECT_PAGE_MAX - 1] = '\0';
    connect_page_open(&p, "t");
    connect_page_text(&p, "%s", big);
    connect_page_close(&p);
    assert_int_equal(connect_page_take(&p, &html, &len), -1);
    assert_null(html);
    assert_null(p.buf);
    free(big);
}

static int get(const char *s, const char *key, char *out, size_t outsz)
{
    return connect_form_get(s, strlen(s), key, out, outsz);
}

static void test_form_fields(void **state)
{
    static const char q[] =
        "code=AB11796613700abc&state=v1.qbo-connect.1.2.x&realmId=4620816365014867780";
    char v[64];
    (void)state;

    assert_int_equal(get(q, "code", v, sizeof v), 1);
    assert_string_equal(v, "AB11796613700abc");
    assert_int_equal(get(q, "realmId", v, sizeof v), 1);
    assert_string_equal(v, "4620816365014867780");
    assert_int_equal(get(q, "error", v, sizeof v), 0);
    assert_string_equal(v, "");
    /* decoding: + is a space, %XX in either case, a name may be escaped too */
    assert_int_equal(get("error_description=The+user+did%20not%2bgrant%2Faccess",
                         "error_description", v, sizeof v),
                     1);
    assert_string_equal(v, "The user did not+grant/access");
    assert_int_equal(get("re%61lm=7", "realm", v, sizeof v), 1);
    assert_string_equal(v, "7");
    /* empty values, a name without '=', empty pairs */
    assert_int_equal(get("a=&&b", "a", v, sizeof v), 1);
    assert_string_equal(v, "");
    assert_int_equal(get("a=&&b", "b", v, sizeof v), 1);
    assert_string_equal(v, "");
    /* refused: a doubled parameter, a bad escape anywhere, a NUL, too long */
    assert_int_equal(get("state=a&state=b", "state", v, sizeof v), -1);
    assert_int_equal(get("code=1&x=%zz", "code", v, sizeof v), -1);
    assert_int_equal(get("code=1%", "code", v, sizeof v), -1);
    assert_int_equal(get("code=1%4", "code", v, sizeof v), -1);
    assert_int_equal(get("code=a%00b", "code", v, sizeof v), -1);
    assert_int_equal(get("code=0123456789", "code", v, 10), -1);
    assert_int_equal(get("code=012345678", "code", v, 10), 1);
    /* only the bytes given are read */
    assert_int_equal(connect_form_get("code=12&x=3", 7, "code", v, sizeof v), 1);
    assert_string_equal(v, "12");
    assert_int_equal(connect_form_get("code=12&x=3", 7, "x", v, sizeof v), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_page_escapes_every_text),
        cmocka_unit_test(test_page_over_its_bound_fails),
        cmocka_unit_test(test_form_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
