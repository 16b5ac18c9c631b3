/* test_connect.c - component tests of the connect pages (worker/connect.c, served by
 * worker/ingress.c) against a private redis-server and hsqb-sandbox playing Intuit's and
 * HubSpot's authorization servers. The ingress runs for real (libmicrohttpd, a producer on
 * librdkafka's mock cluster that no test uses); the test is the browser, clicking through
 * the sandbox's consent pages.
 *
 * What a user would notice: a connect link from `credentials connect-link` leads to
 * Intuit's consent page and back to a page naming the company, and from then on the
 * company's tokens are stored and it is bound to the portal (the options dropdown shows
 * it at once); cancelling says so and changes nothing; a forged, expired, replayed or
 * misused state and a bad or expired link are refused with a page that says why, before
 * any token call; a company connected to another HubSpot account stays as it is there
 * (its tokens keep working: nothing is revoked); disconnecting needs the form's CSRF token,
 * revokes at Intuit, deletes the tokens and unbinds; installing the HubSpot app stores
 * the portal's tokens next to where private-app tokens live (learning the portal from the
 * token's metadata when HubSpot's answer does not name it), and a private-app token stored
 * afterwards replaces the install. Every page carries the strict security headers, and
 * without ingress.session_secret the pages answer 503.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "worker/cmd_credentials.h"
#include "worker/company.h"
#include "worker/connect.h"
#include "worker/connect_state.h"
#include "worker/hubspot.h"
#include "worker/hubspot_oauth.h"
#include "worker/ingress.h"
#include "worker/ingress_options.h"
#include "worker/oauth.h"
#include "worker/producer.h"
#include "worker/tenancy.h"

#include "tests/unit/worker/sandbox_harness.h"

#define PORTAL      102670506
#define PORTAL2     243987001
#define PUBLIC      "http://localhost:8080" /* the redirect URIs the sandbox knows */
#define SECRET      "test-session-secret-0123456789abcdef-0123"
#define HS_CLIENT   "hsqb-client-id-1"
#define HS_SECRET   "hsqb-client-secret-1"
#define HS_RT       "na1-rt-11111111-aaaa-4bbb-8ccc-dddddddddddd"
#define TOKEN_PATH  "vendor=oauth&path=/oauth2/v1/tokens/bearer"
#define REVOKE_PATH "vendor=oauth&path=/v2/oauth2/tokens/revoke"

static const struct connect_secret K = {SECRET, sizeof SECRET - 1};

static struct config *cfg;
static struct producer *producer;
static struct connect *conn;
static struct ingress *in;
static struct http_client *web; /* the browser */
static char base[64];           /* the ingress: http://127.0.0.1:<port> */

/* ---- the browser ------------------------------------------------------------------- */

struct reply {
    long status;
    char *body;
    char location[8192];
    char csp[256], xfo[32], referrer[32], cache[32], allow[32];
    char set_cookie[512];
};

/* The browser's cookie jar: the session and flow cookies' values ("" = none), sent with
 * every request to the ingress and replaced by its Set-Cookie. */
static char jar[CONNECT_TOKEN_MAX + 1], flow[CONNECT_NONCE_LEN + 1];

/* Keeps the cookie of a Set-Cookie value sc named name in dst (dstsz bytes). */
static void keep_cookie(const char *sc, const char *name, char *dst, size_t dstsz)
{
    const char *end;
    size_t n = strlen(name);

    if (strncmp(sc, name, n) != 0 || sc[n] != '=')
        return;
    sc += n + 1;
    end = strchr(sc, ';');
    snprintf(dst, dstsz, "%.*s", end ? (int)(end - sc) : (int)strlen(sc), sc);
}

static void header(const struct http_response *resp, const char *name, char *dst, size_t dstsz)
{
    const char *v = http_response_header(resp, name);
    snprintf(dst, dstsz, "%s", v ? v : "");
}

static void fetch(enum http_method m, const char *url, const char *form, struct reply *out)
{
    char cookie[sizeof jar + sizeof flow + 64], e[256];
    const struct http_header cookies[] = {{"Cookie", cookie}};
    struct http_request rq = {.method = m,
                              .url = url,
                              .headers = cookies,
                              .nheaders = (jar[0] || flow[0]) && strncmp(url, base, strlen(base)) == 0,
                              .body = form,
                              .body_len = form ? strlen(form) : 0,
                              .content_type = form ? "application/x-www-form-urlencoded" : NULL};
    struct http_response resp;

    snprintf(cookie, sizeof cookie, CONNECT_SESSION_COOKIE "=%s; " CONNECT_FLOW_COOKIE "=%s", jar,
             flow);
    http_response_init(&resp);
    if (http_client_do(web, &rq, &resp, e, sizeof e) != HTTP_OK)
        fail_msg("%s: %s", url, e);
    memset(out, 0, sizeof *out);
    out->status = resp.status;
    out->body = strdup(resp.body);
    header(&resp, "Location", out->location, sizeof out->location);
    header(&resp, "Content-Security-Policy", out->csp, sizeof out->csp);
    header(&resp, "X-Frame-Options", out->xfo, sizeof out->xfo);
    header(&resp, "Referrer-Policy", out->referrer, sizeof out->referrer);
    header(&resp, "Cache-Control", out->cache, sizeof out->cache);
    header(&resp, "Allow", out->allow, sizeof out->allow);
    header(&resp, "Set-Cookie", out->set_cookie, sizeof out->set_cookie);
    keep_cookie(out->set_cookie, CONNECT_SESSION_COOKIE, jar, sizeof jar);
    keep_cookie(out->set_cookie, CONNECT_FLOW_COOKIE, flow, sizeof flow);
    http_response_release(&resp);
}

static void reply_free(struct reply *r)
{
    free(r->body);
    r->body = NULL;
}

/* url with the public URL's origin replaced by the ingress's (a proxy's job). */
static const char *local(const char *url)
{
    static char buf[4][8192];
    static int k;
    char *b = buf[k++ & 3];

    if (strncmp(url, PUBLIC, strlen(PUBLIC)) == 0)
        snprintf(b, sizeof buf[0], "%s%s", base, url + strlen(PUBLIC));
    else if (url[0] == '/')
        snprintf(b, sizeof buf[0], "%s%s", base, url);
    else
        snprintf(b, sizeof buf[0], "%s", url);
    return b;
}

static const char *query_of(const char *url)
{
    const char *q = strchr(url, '?');
    assert_non_null(q);
    return q + 1;
}

/* A page of status whose body holds text, with the pages' security headers. */
static void expect_page(const struct reply *r, long status, const char *text)
{
    if (r->status != status || !strstr(r->body, text))
        fail_msg("expected %ld with \"%s\", got %ld: %s", status, text, r->status, r->body);
    assert_int_equal(strncmp(r->csp, "default-src 'none'; style-src 'sha256-", 38), 0);
    assert_non_null(strstr(r->csp, "'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"));
    assert_string_equal(r->xfo, "DENY");
    assert_string_equal(r->referrer, "no-referrer");
    assert_string_equal(r->cache, "no-store");
}

static void get_page(const char *url, long status, const char *text)
{
    struct reply r;
    fetch(HTTP_GET, local(url), NULL, &r);
    expect_page(&r, status, text);
    reply_free(&r);
}

/* P's connect URL (and its link into link, when not NULL), from the command line. */
static void connect_url(int64_t portal, char *url, size_t urlsz, char *link)
{
    char p[24], *out = NULL, *err = NULL, *nl;
    size_t on = 0, en = 0;
    FILE *fo = open_memstream(&out, &on), *fe = open_memstream(&err, &en);
    char *argv[] = {"credentials",
                    "connect-link",
                    "--portal",
                    p,
                    "--ingress.public_url=" PUBLIC,
                    "--http.allow_insecure=true",
                    NULL};
    char *envp[] = {"HSQB_INGRESS_SESSION_SECRET=" SECRET, NULL};
    int rc;

    snprintf(p, sizeof p, "%lld", (long long)portal);
    rc = cmd_credentials_run(6, argv, envp, stdin, fo, fe);
    fclose(fo);
    fclose(fe);
    if (rc != 0)
        fail_msg("connect-link: %d: %s", rc, err);
    assert_int_equal(strncmp(out, "connect:    " PUBLIC "/qbo/connect?portal=", 43), 0);
    assert_non_null(strstr(err, "valid for 15 minutes"));
    if ((nl = strchr(out, '\n')))
        *nl = '\0';
    snprintf(url, urlsz, "%s", out + strlen("connect:    "));
    if (link)
        snprintf(link, CONNECT_TOKEN_MAX + 1, "%s", strstr(url, "&link=") + 6);
    free(out);
    free(err);
}

/* Clicks through Intuit's consent page from a connect URL: the redirect to it, the page
 * (its company picker), the decision. The callback URL it sends the browser to, rewritten
 * to the ingress, into cb. */
static void consent_qbo(const char *url, const char *realm, const char *decision, char *cb,
                        size_t cbsz)
{
    struct reply r;
    char want[64], form[8192], decide[256], consent[8192];

    fetch(HTTP_GET, local(url), NULL, &r);
    if (r.status != 302)
        fail_msg("connect: %ld %s", r.status, r.body);
    assert_string_equal(r.referrer, "no-referrer");
    assert_int_equal(strncmp(r.location, H.sb_url, strlen(H.sb_url)), 0);
    assert_non_null(strstr(r.location, "/connect/oauth2?client_id=" H_CLIENT_ID
                                       "&response_type=code&scope=com.intuit.quickbooks."
                                       "accounting&redirect_uri=http%3A%2F%2Flocalhost%3A8080"
                                       "%2Fqbo%2Fcallback&state=v1.qbo-connect."));
    snprintf(form, sizeof form, "%s&realmId=%s&decision=%s", query_of(r.location), realm, decision);
    snprintf(want, sizeof want, "id=\"realm-%s\"", realm);
    snprintf(consent, sizeof consent, "%s", r.location);
    reply_free(&r);
    /* the page a signed-in admin sees: a picker with the company */
    fetch(HTTP_GET, consent, NULL, &r);
    if (r.status != 200 || !strstr(r.body, want))
        fail_msg("consent page: %ld %s", r.status, r.body);
    reply_free(&r);
    snprintf(decide, sizeof decide, "%s/connect/oauth2/decision", H.sb_url);
    fetch(HTTP_POST, decide, form, &r);
    if (r.status != 302 ||
        strncmp(r.location, PUBLIC "/qbo/callback?", strlen(PUBLIC "/qbo/callback?")) != 0)
        fail_msg("decision: %ld %s %s", r.status, r.location, r.body);
    snprintf(cb, cbsz, "%s", local(r.location));
    reply_free(&r);
}

/* The whole connect of realm to portal, ending on the "Connected" page. */
static void connect_realm(int64_t portal, const char *realm, const char *company)
{
    char url[8192], cb[8192], want[256];

    connect_url(portal, url, sizeof url, NULL);
    consent_qbo(url, realm, "connect", cb, sizeof cb);
    snprintf(want, sizeof want, "Connected %s (realm %s) to HubSpot account %lld.", company, realm,
             (long long)portal);
    get_page(cb, 200, want);
}

static int64_t owner_of(const char *realm)
{
    int64_t p = 0;
    char e[256];
    int r = tenancy_portal_of(H.redis, realm, &p, e, sizeof e);

    assert_true(r >= 0);
    return r == 1 ? p : 0;
}

/* Intuit still accepts realm's stored refresh token (a refresh through the sandbox). */
static int refresh_works(const char *rt)
{
    char url[256], e[256];
    const struct http_param form[] = {{"grant_type", "refresh_token"}, {"refresh_token", rt}};
    struct http_request rq = {.method = HTTP_POST,
                              .url = url,
                              .form = form,
                              .nform = 2,
                              .basic_user = H_CLIENT_ID,
                              .basic_pass = H_CLIENT_SECRET};
    struct http_response resp;
    long st;

    snprintf(url, sizeof url, "%s/oauth2/v1/tokens/bearer", H.sb_url);
    http_response_init(&resp);
    assert_int_equal(http_client_do(web, &rq, &resp, e, sizeof e), HTTP_OK);
    st = resp.status;
    http_response_release(&resp);
    return st == 200;
}

/* ---- fixtures ----------------------------------------------------------------------- */

static struct config *config_with(const char *secret)
{
    char authz[128], revoke[128], hsauthz[128], sec[128];
    const char *extra[] = {"--ingress.public_url=" PUBLIC,
                           "--ingress.listen=127.0.0.1:0",
                           "--ingress.threads=2",
                           "--kafka.brokers=127.0.0.1:9",
                           "--kafka.test.mock.num.brokers=1",
                           authz,
                           revoke,
                           hsauthz,
                           "--hubspot.oauth.client_id=" HS_CLIENT,
                           "--hubspot.oauth.scopes=oauth,automation,crm.objects.contacts.read,"
                           "crm.objects.deals.read,e-commerce,crm.objects.commercepayments.read,"
                           "tax_rates.read",
                           "--hubspot.oauth.optional_scopes=crm.objects.companies.read,"
                           "crm.objects.line_items.read",
                           "HSQB_INGRESS_CLIENT_SECRETS=hsqb-app-secret-1",
                           "HSQB_HUBSPOT_OAUTH_CLIENT_SECRET=" HS_SECRET,
                           sec,
                           NULL};

    snprintf(authz, sizeof authz, "--oauth.authorize_url=%s/connect/oauth2", H.sb_url);
    snprintf(revoke, sizeof revoke, "--oauth.revoke_url=%s/v2/oauth2/tokens/revoke", H.sb_url);
    snprintf(hsauthz, sizeof hsauthz, "--hubspot.oauth.authorize_url=%s/oauth/authorize", H.sb_url);
    snprintf(sec, sizeof sec, "HSQB_INGRESS_SESSION_SECRET=%s", secret);
    if (!*secret)
        extra[sizeof extra / sizeof *extra - 2] = NULL;
    return h_config(extra);
}

static int group_setup(void **state)
{
    char e[256];
    (void)state;
    h_start();
    web = h_http_new();
    cfg = config_with(SECRET);
    if (!(producer = producer_new(cfg, e, sizeof e)))
        fail_msg("producer: %s", e);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    producer_free(producer);
    config_free(cfg);
    http_client_free(web);
    h_stop();
    return 0;
}

static int setup(void **state)
{
    char e[256];
    struct ingress_params ip;
    (void)state;

    h_reset();
    jar[0] = flow[0] = '\0';
    if (!(conn = connect_new(cfg, NULL, e, sizeof e)))
        fail_msg("connect_new: %s", e);
    ip = (struct ingress_params){cfg, NULL, producer, NULL, conn};
    if (!(in = ingress_start(&ip, e, sizeof e)))
        fail_msg("ingress_start: %s", e);
    snprintf(base, sizeof base, "http://127.0.0.1:%d", ingress_port(in));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ingress_stop(in, 1000);
    connect_free(conn);
    in = NULL;
    conn = NULL;
    return 0;
}

/* ---- QuickBooks: connect -------------------------------------------------------------- */

static void test_connect_a_company(void **state)
{
    char url[8192], cb[8192], e[256], *rt, *at;
    struct oauth_status st;
    struct ingress_options *opts;
    struct jbuf jb;
    static const char fetch_realms[] =
        "{\"origin\":{\"portalId\":102670506,\"actionDefinitionId\":1},"
        "\"inputFieldName\":\"qbo_realm_id\"}";
    (void)state;

    /* the workflow editor's company dropdown, cached while nothing is connected */
    if (!(opts = ingress_options_new(cfg, NULL, e, sizeof e)))
        fail_msg("options: %s", e);
    jbuf_init(&jb, 1 << 20);
    assert_int_equal(ingress_options_answer(opts, fetch_realms, strlen(fetch_realms), &jb), 200);
    assert_null(strstr(jbuf_cstr(&jb), H_REALM_US2));
    jbuf_release(&jb);

    connect_url(PORTAL, url, sizeof url, NULL);
    consent_qbo(url, H_REALM_US2, "connect", cb, sizeof cb);
    assert_int_equal(h_count(TOKEN_PATH, NULL), 0); /* nothing before the callback */
    get_page(cb, 200,
             "<p id=\"result\">Connected Sandbox Company US 2 (realm 4620816365014867781) to "
             "HubSpot account 102670506.</p>");

    /* stored as `credentials qbo` stores them, the access token too: CompanyInfo needed no
     * refresh, one token call in all (the exchange) */
    assert_int_equal(oauth_status_get(H.redis, H_REALM_US2, &st, e, sizeof e), 1);
    assert_true(st.has_refresh_token && st.has_access_token && !st.reauth_required);
    assert_true(st.refresh_expires_at_ms > clock_wall_ms() + 86400000LL);
    assert_int_equal(h_count(TOKEN_PATH, NULL), 1);
    assert_int_equal(h_count("vendor=qbo&path=/v3/company/4620816365014867781/companyinfo", NULL),
                     1);
    rt = h_hget(H_REALM_US2, "refresh_token");
    at = h_hget(H_REALM_US2, "access_token");
    assert_non_null(rt);
    assert_string_not_equal(rt, H_RT_US2); /* the consent's own, not the seeded one */
    assert_true(refresh_works(rt));
    assert_non_null(at);
    assert_true(strlen(at) > 100);
    free(rt);
    free(at);
    assert_int_equal(owner_of(H_REALM_US2), PORTAL);

    /* the dropdown shows it at once (its cached list was dropped) */
    jbuf_init(&jb, 1 << 20);
    assert_int_equal(ingress_options_answer(opts, fetch_realms, strlen(fetch_realms), &jb), 200);
    assert_non_null(strstr(jbuf_cstr(&jb), "Sandbox Company US 2"));
    jbuf_release(&jb);
    ingress_options_free(opts);

    /* the same answer again (a reload): refused, nothing exchanged (the exchange and the
     * test's own refresh above are the two token calls) */
    get_page(cb, 400, "already used");
    assert_int_equal(h_count(TOKEN_PATH, NULL), 2);

    /* connecting it again from the same account: fine, fresh tokens */
    connect_realm(PORTAL, H_REALM_US2, "Sandbox Company US 2");
    assert_int_equal(owner_of(H_REALM_US2), PORTAL);
}

static void test_cancel_says_so(void **state)
{
    char url[8192], cb[8192], e[256];
    struct oauth_status st;
    (void)state;

    connect_url(PORTAL, url, sizeof url, NULL);
    consent_qbo(url, H_REALM_US2, "cancel", cb, sizeof cb);
    assert_non_null(strstr(cb, "error=access_denied"));
    get_page(cb, 200, "You chose not to connect a QuickBooks company");
    assert_int_equal(oauth_status_get(H.redis, H_REALM_US2, &st, e, sizeof e), 0);
    assert_int_equal(owner_of(H_REALM_US2), 0);
    assert_int_equal(h_count(TOKEN_PATH, NULL), 0);
    /* any other error Intuit sends back is shown, escaped */
    get_page("/qbo/callback?error=invalid_scope&error_description=%3Cb%3Enope%3C%2Fb%3E&state=x",
             400, "Intuit refused the request (invalid_scope: &lt;b&gt;nope&lt;/b&gt;)");
}

/* The callback of a real consent with its state replaced by state. */
static void callback_with_state(const char *cb, const char *state, char *out, size_t outsz)
{
    const char *s = strstr(cb, "&state="), *end;

    assert_non_null(s);
    end = strchr(s + 1, '&');
    snprintf(out, outsz, "%.*s&state=%s%s", (int)(s - cb), cb, state, end ? end : "");
}

static void test_forged_expired_replayed_states_refused(void **state)
{
    char url[8192], cb[8192], bad[8192 + 256], tok[CONNECT_TOKEN_MAX + 1];
    char link[CONNECT_TOKEN_MAX + 1];
    static const char other_secret[] = "another-deployment-secret-0123456789abcdef";
    struct connect_secret k2 = {other_secret, sizeof other_secret - 1};
    char *real;
    (void)state;

    connect_url(PORTAL, url, sizeof url, link);
    consent_qbo(url, H_REALM_US2, "connect", cb, sizeof cb);
    real = strdup(strstr(cb, "&state=") + 7);
    *strchr(real, '&') = '\0';

    /* tampered: the portal swapped for another */
    snprintf(tok, sizeof tok, "v1.qbo-connect.243987001%s",
             real + strlen("v1.qbo-connect.102670506"));
    callback_with_state(cb, tok, bad, sizeof bad);
    get_page(bad, 400, "did not issue (forged)");
    /* signed with another secret */
    assert_int_equal(connect_token_mint(&k2, CONNECT_PURPOSE_QBO, PORTAL, clock_wall_ms() + 60000,
                                        tok, sizeof tok),
                     0);
    callback_with_state(cb, tok, bad, sizeof bad);
    get_page(bad, 400, "did not issue (forged)");
    /* ours, but expired */
    assert_int_equal(
        connect_token_mint(&K, CONNECT_PURPOSE_QBO, PORTAL, clock_wall_ms() - 1, tok, sizeof tok),
        0);
    callback_with_state(cb, tok, bad, sizeof bad);
    get_page(bad, 400, "This sign-in expired");
    /* ours, but a HubSpot install's, or the connect link itself */
    assert_int_equal(connect_token_mint(&K, CONNECT_PURPOSE_HUBSPOT, 0, clock_wall_ms() + 60000,
                                        tok, sizeof tok),
                     0);
    callback_with_state(cb, tok, bad, sizeof bad);
    get_page(bad, 400, "(wrong purpose)");
    callback_with_state(cb, link, bad, sizeof bad);
    get_page(bad, 400, "(wrong purpose)");
    /* none at all, two of them */
    callback_with_state(cb, "", bad, sizeof bad);
    get_page(bad, 400, "did not issue (malformed)");
    snprintf(bad, sizeof bad, "%.8000s&state=%.200s", cb, real);
    get_page(bad, 400, "without a valid state");
    /* not one token call for any of them, nothing stored */
    assert_int_equal(h_count(TOKEN_PATH, NULL), 0);
    assert_int_equal(owner_of(H_REALM_US2), 0);

    /* the real one works once, then it is a replay */
    get_page(cb, 200, "Connected Sandbox Company US 2");
    get_page(cb, 400, "This sign-in was already used");
    assert_int_equal(h_count(TOKEN_PATH, NULL), 1);
    free(real);
}

static void test_links_refused(void **state)
{
    char link[CONNECT_TOKEN_MAX + 1], url[8192];
    struct reply r;
    (void)state;

    get_page("/qbo/connect", 400, "names no HubSpot account");
    get_page("/qbo/connect?portal=102670506", 403, "This link is not valid");
    /* another portal's link */
    connect_url(PORTAL2, url, sizeof url, link);
    snprintf(url, sizeof url, "/qbo/connect?portal=102670506&link=%s", link);
    get_page(url, 403, "(wrong portal)");
    /* expired */
    assert_int_equal(connect_token_mint(&K, CONNECT_PURPOSE_LINK, PORTAL, clock_wall_ms() - 1, link,
                                        sizeof link),
                     0);
    snprintf(url, sizeof url, "/qbo/connect?portal=102670506&link=%s", link);
    get_page(url, 403, "This link expired");
    /* a state is no link */
    assert_int_equal(connect_token_mint(&K, CONNECT_PURPOSE_QBO, PORTAL, clock_wall_ms() + 60000,
                                        link, sizeof link),
                     0);
    snprintf(url, sizeof url, "/qbo/connect?portal=102670506&link=%s", link);
    get_page(url, 403, "(wrong purpose)");
    /* the pages take what they take */
    fetch(HTTP_PUT, local("/qbo/connect"), "x=1", &r);
    expect_page(&r, 405, "does not take PUT requests");
    assert_string_equal(r.allow, "GET");
    reply_free(&r);
    fetch(HTTP_DELETE, local("/qbo/disconnect"), NULL, &r);
    expect_page(&r, 405, "does not take DELETE");
    assert_string_equal(r.allow, "GET, POST");
    reply_free(&r);
    assert_int_equal(h_count("vendor=oauth", NULL), 0);
}

static void test_company_of_another_account_left_alone(void **state)
{
    char url[8192], cb[8192], e[256], *rt;
    const char *const us1[] = {H_REALM_US1, NULL};
    (void)state;

    /* US1 belongs to the other account, with its seeded connection */
    assert_int_equal(oauth_store_refresh_token(H.redis, H_REALM_US1, H_RT_US1, 0, e, sizeof e), 0);
    h_bind(PORTAL2, us1);
    connect_url(PORTAL, url, sizeof url, NULL);
    consent_qbo(url, H_REALM_US1, "connect", cb, sizeof cb);
    get_page(cb, 409,
             "QuickBooks company 4620816365014867780 is connected to another HubSpot "
             "account");
    /* still the other account's, its token as it was and still good at Intuit: the fresh
     * tokens were dropped, not revoked (a revocation ends the app's whole connection) */
    assert_int_equal(owner_of(H_REALM_US1), PORTAL2);
    rt = h_hget(H_REALM_US1, "refresh_token");
    assert_string_equal(rt, H_RT_US1);
    free(rt);
    assert_int_equal(h_count(REVOKE_PATH, NULL), 0);
    assert_true(refresh_works(H_RT_US1));
}

/* ---- QuickBooks: disconnect ------------------------------------------------------------- */

/* The value of the hidden field name on page (the first one). */
static void hidden(const char *page, const char *name, char *out, size_t outsz)
{
    char want[64];
    const char *v, *end;

    snprintf(want, sizeof want, "name=\"%s\" value=\"", name);
    assert_non_null(v = strstr(page, want));
    v += strlen(want);
    assert_non_null(end = strchr(v, '"'));
    snprintf(out, outsz, "%.*s", (int)(end - v), v);
}

static void test_disconnect(void **state)
{
    char link[CONNECT_TOKEN_MAX + 1], other[CONNECT_TOKEN_MAX + 1], url[8192], csrf[64];
    char form[1024], post[128], e[256], *rt;
    struct oauth_status st;
    struct reply r;
    (void)state;

    connect_realm(PORTAL, H_REALM_US2, "Sandbox Company US 2");
    rt = h_hget(H_REALM_US2, "refresh_token");
    connect_url(PORTAL, url, sizeof url, link);
    /* the page of the account's companies, with a form each */
    snprintf(url, sizeof url, "/qbo/disconnect?portal=102670506&link=%s", link);
    fetch(HTTP_GET, local(url), NULL, &r);
    expect_page(&r, 200, "id=\"disconnect-4620816365014867781\"");
    hidden(r.body, "csrf", csrf, sizeof csrf);
    reply_free(&r);
    snprintf(post, sizeof post, "%s/qbo/disconnect", base);

    /* no CSRF token, or one of another link: refused, nothing changed */
    snprintf(form, sizeof form, "portal=102670506&link=%s&realm=" H_REALM_US2, link);
    fetch(HTTP_POST, post, form, &r);
    expect_page(&r, 403, "did not come from this server");
    reply_free(&r);
    connect_url(PORTAL, url, sizeof url, other);
    snprintf(form, sizeof form, "portal=102670506&link=%s&csrf=%s&realm=" H_REALM_US2, other, csrf);
    fetch(HTTP_POST, post, form, &r);
    expect_page(&r, 403, "did not come from this server");
    reply_free(&r);
    /* a company the account does not hold */
    snprintf(form, sizeof form, "portal=102670506&link=%s&csrf=%s&realm=" H_REALM_US1, link, csrf);
    fetch(HTTP_POST, post, form, &r);
    expect_page(&r, 404, "is not connected to HubSpot account 102670506");
    reply_free(&r);
    /* not a form */
    {
        struct http_request rq = {.method = HTTP_POST,
                                  .url = post,
                                  .body = "{}",
                                  .body_len = 2,
                                  .content_type = "application/json"};
        struct http_response resp;
        http_response_init(&resp);
        assert_int_equal(http_client_do(web, &rq, &resp, e, sizeof e), HTTP_OK);
        assert_int_equal(resp.status, 415);
        assert_non_null(strstr(resp.body, "forms only"));
        http_response_release(&resp);
    }
    assert_int_equal(h_count(REVOKE_PATH, NULL), 0);
    assert_int_equal(owner_of(H_REALM_US2), PORTAL);

    /* Intuit down: nothing changes */
    assert_int_equal(h_admin(HTTP_POST, "/_sandbox/faults",
                             "{\"path\":\"/v2/oauth2/tokens/revoke\",\"status\":503,\"times\":1}",
                             NULL),
                     201);
    snprintf(form, sizeof form, "portal=102670506&link=%s&csrf=%s&realm=" H_REALM_US2, link, csrf);
    fetch(HTTP_POST, post, form, &r);
    expect_page(&r, 502, "Intuit did not answer while revoking");
    reply_free(&r);
    assert_int_equal(owner_of(H_REALM_US2), PORTAL);
    assert_int_equal(oauth_status_get(H.redis, H_REALM_US2, &st, e, sizeof e), 1);

    /* the real thing */
    fetch(HTTP_POST, post, form, &r);
    expect_page(&r, 200,
                "Disconnected QuickBooks company 4620816365014867781 from HubSpot "
                "account 102670506.");
    reply_free(&r);
    assert_int_equal(h_count(REVOKE_PATH, NULL), 2);
    assert_false(refresh_works(rt));
    assert_int_equal(oauth_status_get(H.redis, H_REALM_US2, &st, e, sizeof e), 0);
    assert_int_equal(owner_of(H_REALM_US2), 0);
    /* and the list is empty */
    snprintf(url, sizeof url, "/qbo/disconnect?portal=102670506&link=%s", link);
    get_page(url, 200, "connected to HubSpot account 102670506: 0.");
    free(rt);
}

/* ---- HubSpot install ------------------------------------------------------------------ */

/* Clicks through HubSpot's consent page: /hubspot/install, the page, the decision for
 * portal. The callback URL, rewritten to the ingress, into cb. */
/* Clicks through HubSpot's consent from start (the install, or a settings page that
 * needs a sign-in), whose state must be of purpose. */
static void consent_hubspot_from(const char *start, const char *purpose, int64_t portal,
                                 const char *decision, char *cb, size_t cbsz)
{
    struct reply r;
    char form[8192], decide[256], consent[8192], want[64];

    fetch(HTTP_GET, local(start), NULL, &r);
    if (r.status != 302)
        fail_msg("%s: %ld %s", start, r.status, r.body);
    snprintf(want, sizeof want, "&state=v1.%s.0.", purpose);
    assert_non_null(strstr(r.location, want));
    assert_non_null(strstr(r.location, "/oauth/authorize?client_id=" HS_CLIENT
                                       "&redirect_uri=http%3A%2F%2Flocalhost%3A8080%2Fhubspot%2F"
                                       "oauth-callback&scope=oauth%20automation%20"));
    assert_non_null(strstr(r.location, "&optional_scope=crm.objects.companies.read%20"));
    snprintf(form, sizeof form, "%s&portalId=%lld&decision=%s", query_of(r.location),
             (long long)portal, decision);
    snprintf(consent, sizeof consent, "%s", r.location);
    reply_free(&r);
    fetch(HTTP_GET, consent, NULL, &r);
    snprintf(want, sizeof want, "id=\"portal-%lld\"", (long long)portal);
    if (r.status != 200 || !strstr(r.body, want))
        fail_msg("consent page: %ld %s", r.status, r.body);
    reply_free(&r);
    snprintf(decide, sizeof decide, "%s/oauth/authorize/decision", H.sb_url);
    fetch(HTTP_POST, decide, form, &r);
    if (r.status != 302 || strncmp(r.location, PUBLIC "/hubspot/oauth-callback?",
                                   strlen(PUBLIC "/hubspot/oauth-callback?")) != 0)
        fail_msg("decision: %ld %s %s", r.status, r.location, r.body);
    snprintf(cb, cbsz, "%s", local(r.location));
    reply_free(&r);
}

static void consent_hubspot(int64_t portal, const char *decision, char *cb, size_t cbsz)
{
    consent_hubspot_from("/hubspot/install", CONNECT_PURPOSE_HUBSPOT, portal, decision, cb, cbsz);
}

/* portal's stored token, as the worker reads it (malloc'd, or NULL). */
static char *portal_token(int64_t portal)
{
    char key[REDIS_MAX_KEY + 1], e[256], *v = NULL;
    redisReply *r;

    assert_int_equal(hubspot_token_key(key, sizeof key, "hsqb:", portal), 0);
    assert_non_null(r = redis_command(H.redis, e, sizeof e, "GET %s", key));
    if (r->type == REDIS_REPLY_STRING)
        v = strdup(r->str);
    freeReplyObject(r);
    return v;
}

/* HubSpot answers 200 to token on portal's account details. */
static int token_serves(const char *token, int64_t portal)
{
    char url[256], e[256], want[64];
    struct http_request rq = {.method = HTTP_GET, .url = url, .bearer = token};
    struct http_response resp;
    int ok;

    snprintf(url, sizeof url, "%s/account-info/v3/details", H.sb_url);
    snprintf(want, sizeof want, "\"portalId\":%lld", (long long)portal);
    http_response_init(&resp);
    assert_int_equal(http_client_do(web, &rq, &resp, e, sizeof e), HTTP_OK);
    ok = resp.status == 200 && strstr(resp.body, want) != NULL;
    http_response_release(&resp);
    return ok;
}

static void test_hubspot_install(void **state)
{
    char cb[8192], e[256], *tok;
    struct hubspot_oauth_status st;
    struct reply r;
    int64_t now = clock_wall_ms();
    (void)state;

    consent_hubspot(PORTAL2, "connect", cb, sizeof cb);
    fetch(HTTP_GET, cb, NULL, &r);
    expect_page(&r, 200, "<p id=\"result\">Installed in HubSpot account 243987001.</p>");
    /* with a connect link for that account, which works */
    assert_non_null(strstr(r.body, "href=\"/qbo/connect?portal=243987001&amp;link=v1.link."));
    {
        char url[4096], *a = strstr(r.body, "/qbo/connect?portal="), *b = strchr(a, '"');
        char clean[4096];
        size_t k = 0;

        snprintf(url, sizeof url, "%.*s", (int)(b - a), a);
        for (char *p = url; *p && k + 1 < sizeof clean; p++) { /* &amp; -> & */
            clean[k++] = *p;
            if (strncmp(p, "&amp;", 5) == 0)
                p += 4;
        }
        clean[k] = '\0';
        reply_free(&r);
        fetch(HTTP_GET, local(clean), NULL, &r);
        assert_int_equal(r.status, 302);
        reply_free(&r);
    }
    /* the access token where the worker reads a portal's token, and it works there */
    tok = portal_token(PORTAL2);
    assert_non_null(tok);
    assert_true(token_serves(tok, PORTAL2));
    free(tok);
    assert_int_equal(hubspot_oauth_status_get(H.redis, PORTAL2, &st, e, sizeof e), 1);
    assert_true(st.has_refresh_token);
    assert_in_range(st.access_expires_at_ms, now + 1790000, clock_wall_ms() + 1800000);
    assert_true(st.installed_at_ms >= now);
    /* one exchange, no metadata call: the answer named the account */
    assert_int_equal(h_count("method=POST&path=/oauth/v1/token", NULL), 1);
    assert_int_equal(h_count("path=/oauth/v1/access-tokens", NULL), 0);
    /* the same answer again: refused */
    get_page(cb, 400, "already used");

    /* a private-app token stored afterwards replaces the install */
    {
        char *argv[] = {"credentials", "hubspot", "--portal", "243987001", "--token", "-", NULL};
        char *out = NULL, *err = NULL, port[64];
        size_t on = 0, en = 0;
        static char pat[] = "pat-na1-22222222-2222-4222-8222-222222222222\n";
        FILE *fi = fmemopen(pat, strlen(pat), "r");
        FILE *fo = open_memstream(&out, &on), *fe = open_memstream(&err, &en);
        char *envp[] = {port, NULL};

        int rc;

        snprintf(port, sizeof port, "HSQB_REDIS_PORT=%d", H.redis_port);
        rc = cmd_credentials_run(6, argv, envp, fi, fo, fe);
        fclose(fi);
        fclose(fo);
        fclose(fe);
        if (rc != 0)
            fail_msg("credentials hubspot: %d: %s", rc, err);
        free(out);
        free(err);
    }
    assert_int_equal(hubspot_oauth_status_get(H.redis, PORTAL2, &st, e, sizeof e), 0);
    tok = portal_token(PORTAL2);
    assert_string_equal(tok, "pat-na1-22222222-2222-4222-8222-222222222222");
    free(tok);
}

static void test_hubspot_install_cancelled_or_refused(void **state)
{
    char cb[8192], bad[8192 + 256];
    (void)state;

    consent_hubspot(PORTAL2, "cancel", cb, sizeof cb);
    get_page(cb, 200, "You chose not to install the app");
    assert_null(portal_token(PORTAL2));
    /* a QuickBooks state is no install state */
    consent_hubspot(PORTAL2, "connect", cb, sizeof cb);
    {
        char tok[CONNECT_TOKEN_MAX + 1];
        assert_int_equal(connect_token_mint(&K, CONNECT_PURPOSE_QBO, PORTAL2,
                                            clock_wall_ms() + 60000, tok, sizeof tok),
                         0);
        callback_with_state(cb, tok, bad, sizeof bad);
    }
    get_page(bad, 400, "(wrong purpose)");
    /* HubSpot refusing the code is shown, and nothing is stored */
    assert_int_equal(h_admin(HTTP_POST, "/_sandbox/faults",
                             "{\"path\":\"/oauth/v1/token\",\"status\":400,\"times\":1,"
                             "\"body\":{\"status\":\"BAD_AUTH_CODE\",\"message\":\"<i>no</i>\"}}",
                             NULL),
                     201);
    get_page(cb, 400, "HubSpot did not accept the authorization (BAD_AUTH_CODE: &lt;i&gt;no");
    assert_null(portal_token(PORTAL2));
}

/* HubSpot's token answer without hub_id: the account comes from the token's metadata. */
static void test_hubspot_install_learns_the_account(void **state)
{
    char cb[8192], url[256], e[256], rule[4096], *tok;
    const struct http_param form[] = {{"grant_type", "refresh_token"},
                                      {"client_id", HS_CLIENT},
                                      {"client_secret", HS_SECRET},
                                      {"refresh_token", HS_RT}};
    struct http_request rq = {.method = HTTP_POST, .url = url, .form = form, .nform = 4};
    struct http_response resp;
    struct json_object *doc;
    const char *at;
    (void)state;

    /* a real access token of portal 102670506's seeded install, answered without hub_id */
    snprintf(url, sizeof url, "%s/oauth/v1/token", H.sb_url);
    http_response_init(&resp);
    assert_int_equal(http_client_do(web, &rq, &resp, e, sizeof e), HTTP_OK);
    assert_int_equal(resp.status, 200);
    assert_non_null(doc = json_parse_strict(resp.body, resp.body_len, 8, e, sizeof e));
    assert_int_equal(json_get_str(doc, "access_token", &at), JGET_OK);
    snprintf(rule, sizeof rule,
             "{\"path\":\"/oauth/v1/token\",\"method\":\"POST\",\"status\":200,\"times\":1,"
             "\"body\":{\"token_type\":\"bearer\",\"access_token\":\"%s\",\"refresh_token\":"
             "\"" HS_RT "\",\"expires_in\":1800}}",
             at);
    assert_int_equal(h_admin(HTTP_POST, "/_sandbox/faults", rule, NULL), 201);
    consent_hubspot(PORTAL, "connect", cb, sizeof cb);
    get_page(cb, 200, "Installed in HubSpot account 102670506 · portal-102670506.example.com.");
    assert_int_equal(h_count("path=/oauth/v1/access-tokens", NULL), 1);
    tok = portal_token(PORTAL);
    assert_string_equal(tok, at);
    free(tok);
    json_object_put(doc);
    http_response_release(&resp);
}

/* ---- not configured --------------------------------------------------------------------- */


/* A callback opened in a browser that did not start the flow (an attacker sending a victim
 * the callback of a sign-in the attacker started): refused before anything is spent or
 * exchanged; the browser that started it can still finish. */
static void test_callback_from_another_browser_refused(void **state)
{
    char url[8192], cb[8192], mine[sizeof flow];
    (void)state;

    connect_url(PORTAL, url, sizeof url, NULL);
    consent_qbo(url, H_REALM_US2, "connect", cb, sizeof cb);
    assert_int_equal((int)strlen(flow), CONNECT_NONCE_LEN);
    snprintf(mine, sizeof mine, "%s", flow);
    flow[0] = '\0'; /* no flow cookie at all */
    get_page(cb, 400, "belongs to a sign-in started in another browser");
    snprintf(flow, sizeof flow, "%s", "AAAAAAAAAAAAAAAAAAAAAA"); /* another flow's */
    get_page(cb, 400, "Start again from this browser");
    assert_int_equal(h_count(TOKEN_PATH, NULL), 0);
    assert_int_equal(owner_of(H_REALM_US2), 0);
    snprintf(flow, sizeof flow, "%s", mine);
    get_page(cb, 200, "Connected Sandbox Company US 2 (realm 4620816365014867781)");

    /* the HubSpot sign-in likewise: no session for a browser that did not start it */
    consent_hubspot_from("/settings", CONNECT_PURPOSE_SIGNIN, PORTAL2, "connect", cb, sizeof cb);
    flow[0] = '\0';
    get_page(cb, 400, "Start again from this browser");
    assert_string_equal(jar, "");
}

/* ---- the settings page ------------------------------------------------------------------ */

/* A session for portal through its connect link (as an operator hands it out). */
static void session_by_link(int64_t portal)
{
    char url[8192], link[CONNECT_TOKEN_MAX + 1], path[8192];
    struct reply r;

    connect_url(portal, url, sizeof url, link);
    snprintf(path, sizeof path, "/settings?portal=%lld&link=%s", (long long)portal, link);
    fetch(HTTP_GET, local(path), NULL, &r);
    if (r.status != 302 || strcmp(r.location, "/settings") != 0)
        fail_msg("settings by link: %ld %s %s", r.status, r.location, r.body);
    assert_non_null(strstr(r.set_cookie, "; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax"));
    assert_null(strstr(r.set_cookie, "Secure")); /* the public URL is http here */
    assert_int_equal(strncmp(jar, "v1.session.", 11), 0);
    reply_free(&r);
}

/* The settings page (200), its CSRF token into csrf. */
static void settings_page(struct reply *r, char *csrf, size_t csrfsz)
{
    fetch(HTTP_GET, local("/settings"), NULL, r);
    expect_page(r, 200, "<h1 id=\"title\">QuickBooks settings</h1>");
    if (csrf)
        hidden(r->body, "csrf", csrf, csrfsz);
}

/* POSTs form to the ingress's path; the reply into r. */
static void post(const char *path, const char *form, struct reply *r)
{
    char url[256];

    snprintf(url, sizeof url, "%s%s", base, path);
    fetch(HTTP_POST, url, form, r);
}

static void test_settings_page(void **state)
{
    char forged[sizeof jar];
    struct reply r;
    (void)state;

    connect_realm(PORTAL, H_REALM_US2, "Sandbox Company US 2");
    /* no session: sign in with HubSpot first, nothing shown */
    fetch(HTTP_GET, local("/settings"), NULL, &r);
    assert_int_equal(r.status, 302);
    assert_non_null(strstr(r.location, "/oauth/authorize?client_id=" HS_CLIENT));
    assert_non_null(strstr(r.location, "&state=v1.hubspot-signin.0."));
    reply_free(&r);

    session_by_link(PORTAL);
    settings_page(&r, NULL, 0);
    assert_non_null(strstr(r.body, "<p id=\"account\">HubSpot account 102670506: 1 QuickBooks "
                                    "company connected.</p>"));
    assert_non_null(strstr(r.body, "<h2>Sandbox Company US 2</h2>"));
    assert_non_null(strstr(r.body, "<dd class=\"realm\">4620816365014867781</dd>"));
    assert_non_null(strstr(r.body, "<dd class=\"country\">US</dd>"));
    assert_non_null(strstr(r.body, "<dd class=\"health ok\">Healthy (renewed as it is used; "));
    assert_non_null(strstr(r.body, "id=\"save-4620816365014867781\""));
    assert_non_null(strstr(r.body, "id=\"disconnect-4620816365014867781\""));
    assert_non_null(strstr(r.body, "href=\"/qbo/connect?portal=102670506&amp;link=v1.link."));
    reply_free(&r);

    /* a tampered session is no session */
    snprintf(forged, sizeof forged, "%s", jar);
    forged[strlen(forged) - 1] = forged[strlen(forged) - 1] == 'A' ? 'B' : 'A';
    snprintf(jar, sizeof jar, "%s", forged);
    fetch(HTTP_GET, local("/settings"), NULL, &r);
    assert_int_equal(r.status, 302);
    assert_non_null(strstr(r.location, "state=v1.hubspot-signin."));
    reply_free(&r);
    /* an expired one neither */
    assert_int_equal(connect_token_mint(&K, CONNECT_PURPOSE_SESSION, PORTAL, clock_wall_ms() - 1,
                                        jar, sizeof jar),
                     0);
    fetch(HTTP_GET, local("/settings"), NULL, &r);
    assert_int_equal(r.status, 302);
    reply_free(&r);
    /* another account's session sees none of this account's companies */
    assert_int_equal(connect_token_mint(&K, CONNECT_PURPOSE_SESSION, PORTAL2,
                                        clock_wall_ms() + 60000, jar, sizeof jar),
                     0);
    settings_page(&r, NULL, 0);
    assert_non_null(strstr(r.body, "HubSpot account 243987001: 0 QuickBooks companies"));
    assert_null(strstr(r.body, H_REALM_US2));
    reply_free(&r);
    /* a link is a link: a state or a session does not open the page */
    get_page("/settings?portal=102670506&link=x", 403, "This link is not valid");
}

static void test_settings_defaults(void **state)
{
    char csrf[64], form[2048], e[256];
    struct company co;
    struct company_defaults d;
    struct company_cache *cc;
    struct reply r;
    (void)state;

    connect_realm(PORTAL, H_REALM_US2, "Sandbox Company US 2");
    session_by_link(PORTAL);
    settings_page(&r, csrf, sizeof csrf);
    reply_free(&r);

    snprintf(form, sizeof form,
             "csrf=%s&realm=" H_REALM_US2 "&deposit_account=+Checking+&income_account="
             "&fee_item=Fees+%%26+charges&time_zone=America%%2FChicago",
             csrf);
    post("/settings/company", form, &r);
    assert_int_equal(r.status, 302);
    assert_string_equal(r.location, "/settings?saved=" H_REALM_US2);
    reply_free(&r);
    assert_int_equal(company_get(H.redis, H_REALM_US2, &co, e, sizeof e), 1);
    assert_int_equal(co.portal, PORTAL);
    assert_string_equal(co.name, "Sandbox Company US 2");
    assert_string_equal(co.d.deposit_account, "Checking"); /* blanks trimmed */
    assert_string_equal(co.d.income_account, "");
    assert_string_equal(co.d.fee_item, "Fees & charges");
    assert_string_equal(co.d.time_zone, "America/Chicago");
    assert_true(co.updated_at_ms > 0 && co.connected_at_ms > 0);
    fetch(HTTP_GET, local("/settings?saved=" H_REALM_US2), NULL, &r);
    expect_page(&r, 200, "<p id=\"notice\" class=\"ok\">Saved the defaults of company");
    assert_non_null(strstr(r.body, "value=\"Fees &amp; charges\"")); /* escaped */
    reply_free(&r);

    /* what the worker reads: this portal's events get them, another's do not */
    assert_int_equal(company_defaults_for(NULL, H.redis, H_REALM_US2, PORTAL, 0, &d, e, sizeof e),
                     0);
    assert_string_equal(d.deposit_account, "Checking");
    assert_string_equal(d.time_zone, "America/Chicago");
    assert_int_equal(company_defaults_for(NULL, H.redis, H_REALM_US2, PORTAL2, 0, &d, e, sizeof e),
                     0);
    assert_string_equal(d.deposit_account, "");
    assert_string_equal(d.fee_item, "");
    /* cached under a generation: a save is seen when the generation moves */
    assert_non_null(cc = company_cache_new());
    assert_int_equal(company_defaults_for(cc, H.redis, H_REALM_US2, PORTAL, 7, &d, e, sizeof e), 0);
    snprintf(form, sizeof form, "csrf=%s&realm=" H_REALM_US2 "&deposit_account=Savings", csrf);
    post("/settings/company", form, &r);
    assert_int_equal(r.status, 302);
    reply_free(&r);
    assert_int_equal(company_defaults_for(cc, H.redis, H_REALM_US2, PORTAL, 7, &d, e, sizeof e), 0);
    assert_string_equal(d.deposit_account, "Checking");
    assert_int_equal(company_defaults_for(cc, H.redis, H_REALM_US2, PORTAL, 8, &d, e, sizeof e), 0);
    assert_string_equal(d.deposit_account, "Savings");
    assert_string_equal(d.fee_item, ""); /* a field left out of the form is cleared */
    company_cache_free(cc);

    /* refused, nothing changed: a zone nobody knows, a control character, too long */
    snprintf(form, sizeof form, "csrf=%s&realm=" H_REALM_US2 "&time_zone=Mars%%2FOlympus", csrf);
    post("/settings/company", form, &r);
    expect_page(&r, 400, "The time zone must be an IANA name");
    reply_free(&r);
    snprintf(form, sizeof form, "csrf=%s&realm=" H_REALM_US2 "&fee_item=a%%01b", csrf);
    post("/settings/company", form, &r);
    expect_page(&r, 400, "The fee item contains characters");
    reply_free(&r);
    snprintf(form, sizeof form, "csrf=%s&realm=" H_REALM_US2 "&fee_item=%0101d", csrf, 0);
    post("/settings/company", form, &r);
    expect_page(&r, 400, "The fee item is longer than 100 bytes.");
    reply_free(&r);
    /* no CSRF token; a company of no concern to this account; no session */
    post("/settings/company", "realm=" H_REALM_US2 "&deposit_account=X", &r);
    expect_page(&r, 403, "did not come from this server");
    reply_free(&r);
    snprintf(form, sizeof form, "csrf=%s&realm=" H_REALM_US1 "&deposit_account=X", csrf);
    post("/settings/company", form, &r);
    expect_page(&r, 404, "QuickBooks company 4620816365014867780 is not connected to HubSpot "
                         "account 102670506.");
    reply_free(&r);
    jar[0] = '\0';
    snprintf(form, sizeof form, "csrf=%s&realm=" H_REALM_US2 "&deposit_account=X", csrf);
    post("/settings/company", form, &r);
    expect_page(&r, 403, "Your session ended");
    reply_free(&r);
    assert_int_equal(company_get(H.redis, H_REALM_US2, &co, e, sizeof e), 1);
    assert_string_equal(co.d.deposit_account, "Savings"); /* the last good save's */
    assert_string_equal(co.d.time_zone, "");
}

static void test_settings_disconnect_and_sign_out(void **state)
{
    char csrf[64], form[512], e[256];
    struct company co;
    struct reply r;
    (void)state;

    connect_realm(PORTAL, H_REALM_US2, "Sandbox Company US 2");
    connect_realm(PORTAL, H_REALM_US1, "Sandbox Company US 1");
    session_by_link(PORTAL);
    settings_page(&r, csrf, sizeof csrf);
    assert_non_null(strstr(r.body, "2 QuickBooks companies connected."));
    reply_free(&r);

    post("/settings/disconnect", "realm=" H_REALM_US2, &r);
    expect_page(&r, 403, "did not come from this server");
    reply_free(&r);
    assert_int_equal(h_count(REVOKE_PATH, NULL), 0);
    snprintf(form, sizeof form, "csrf=%s&realm=" H_REALM_US2, csrf);
    post("/settings/disconnect", form, &r);
    assert_int_equal(r.status, 302);
    assert_string_equal(r.location, "/settings?disconnected=" H_REALM_US2);
    reply_free(&r);
    assert_int_equal(h_count(REVOKE_PATH, NULL), 1);
    assert_int_equal(owner_of(H_REALM_US2), 0);
    assert_int_equal(company_get(H.redis, H_REALM_US2, &co, e, sizeof e), 0);
    assert_null(h_hget(H_REALM_US2, "refresh_token"));
    fetch(HTTP_GET, local("/settings?disconnected=" H_REALM_US2), NULL, &r);
    expect_page(&r, 200, "1 QuickBooks company connected.");
    assert_non_null(strstr(r.body, "now fail with REALM_NOT_ALLOWED"));
    assert_non_null(strstr(r.body, "<h2>Sandbox Company US 1</h2>"));
    reply_free(&r);
    assert_int_equal(owner_of(H_REALM_US1), PORTAL);

    /* signing out ends the session on this browser */
    post("/settings/signout", "csrf=x", &r);
    expect_page(&r, 403, "Still signed in");
    reply_free(&r);
    snprintf(form, sizeof form, "csrf=%s", csrf);
    post("/settings/signout", form, &r);
    expect_page(&r, 200, "You are signed out");
    assert_non_null(strstr(r.set_cookie, "Max-Age=0"));
    reply_free(&r);
    assert_string_equal(jar, "");
    fetch(HTTP_GET, local("/settings"), NULL, &r);
    assert_int_equal(r.status, 302);
    reply_free(&r);
}

static void test_settings_sign_in_with_hubspot(void **state)
{
    char cb[8192], key[REDIS_MAX_KEY + 1], e[256], *tok;
    struct hubspot_oauth_status st;
    struct reply r;
    redisReply *rep;
    (void)state;

    /* the operator gave the account a private-app token: a sign-in must not replace it */
    assert_int_equal(hubspot_token_key(key, sizeof key, "hsqb:", PORTAL2), 0);
    assert_non_null(rep = redis_command(H.redis, e, sizeof e, "SET %s %s", key,
                                        "pat-na1-33333333-3333-4333-8333-333333333333"));
    freeReplyObject(rep);
    consent_hubspot_from("/settings", CONNECT_PURPOSE_SIGNIN, PORTAL2, "connect", cb, sizeof cb);
    assert_string_equal(jar, "");
    fetch(HTTP_GET, cb, NULL, &r);
    if (r.status != 302 || strcmp(r.location, "/settings") != 0)
        fail_msg("sign-in callback: %ld %s %s", r.status, r.location, r.body);
    assert_int_equal(strncmp(jar, "v1.session.243987001.", 21), 0);
    reply_free(&r);
    tok = portal_token(PORTAL2);
    assert_string_equal(tok, "pat-na1-33333333-3333-4333-8333-333333333333");
    free(tok);
    assert_int_equal(hubspot_oauth_status_get(H.redis, PORTAL2, &st, e, sizeof e), 0);
    settings_page(&r, NULL, 0);
    assert_non_null(strstr(r.body, "HubSpot account 243987001: 0 QuickBooks companies"));
    reply_free(&r);
    /* the answer again: refused, the session stays */
    get_page(cb, 400, "already used");
    /* a sign-in's state does not pass for an install's, nor the reverse (the purpose is in
     * the MAC): an install's answer ends on the install page, with a session too */
    jar[0] = '\0';
    consent_hubspot(PORTAL2, "connect", cb, sizeof cb);
    fetch(HTTP_GET, cb, NULL, &r);
    expect_page(&r, 200, "<a id=\"settings\" href=\"/settings\">");
    assert_int_equal(strncmp(jar, "v1.session.243987001.", 21), 0);
    reply_free(&r);
}

static void test_not_configured(void **state)
{
    struct config *bare = config_with("");
    struct connect *c;
    struct connect_answer a;
    char e[256];
    struct connect_request rq = {"GET", "/qbo/connect", "portal=1&link=x", "", 0};
    (void)state;

    assert_non_null(c = connect_new(bare, NULL, e, sizeof e));
    connect_handle(c, &rq, &a);
    assert_int_equal(a.status, 503);
    assert_non_null(strstr(a.body, "ingress.session_secret"));
    connect_answer_release(&a);
    connect_free(c);
    config_free(bare);

    /* the HubSpot install without the app's credentials */
    {
        const char *extra[] = {"--ingress.public_url=" PUBLIC,
                               "HSQB_INGRESS_SESSION_SECRET=" SECRET, NULL};
        struct connect_request hs = {"GET", "/hubspot/install", "", "", 0};

        bare = h_config(extra);
        assert_non_null(c = connect_new(bare, NULL, e, sizeof e));
        connect_handle(c, &hs, &a);
        assert_int_equal(a.status, 503);
        assert_non_null(strstr(a.body, "hubspot.oauth.client_id"));
        connect_answer_release(&a);
        connect_free(c);
        config_free(bare);
    }
    /* an unknown path is no route */
    /* the settings page without the HubSpot app: only a link opens it */
    {
        const char *extra[] = {"--ingress.public_url=" PUBLIC,
                               "HSQB_INGRESS_SESSION_SECRET=" SECRET, NULL};
        struct connect_request st = {"GET", "/settings", "", "", 0, NULL};

        bare = h_config(extra);
        assert_non_null(c = connect_new(bare, NULL, e, sizeof e));
        connect_handle(c, &st, &a);
        assert_int_equal(a.status, 401);
        assert_non_null(strstr(a.body, "credentials connect-link"));
        connect_answer_release(&a);
        connect_free(c);
        config_free(bare);
    }
    assert_false(connect_is_route("/qbo/connect/x"));
    assert_true(connect_is_route("/hubspot/oauth-callback"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_connect_a_company, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_says_so, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forged_expired_replayed_states_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_links_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_company_of_another_account_left_alone, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_disconnect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hubspot_install, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hubspot_install_cancelled_or_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hubspot_install_learns_the_account, setup, teardown),
        cmocka_unit_test_setup_teardown(test_callback_from_another_browser_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settings_page, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settings_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settings_disconnect_and_sign_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settings_sign_in_with_hubspot, setup, teardown),
        cmocka_unit_test(test_not_configured),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
