/* authorize.c - the consent pages of Intuit's and HubSpot's authorization servers.
 *
 * What a browser meets at appcenter.intuit.com/connect/oauth2 and
 * app.hubspot.com/oauth/authorize, reduced to what a connect flow needs: no login, one
 * plain HTML form (no JavaScript) with a company or account picker, and the redirect back
 * to the app. Stable element ids (realm-<id>, portal-<id>, connect, cancel, error) let a
 * headless browser click through. The apps, their redirect URIs and the codes belong to
 * the vendors (authorize.h); this file only reads requests, renders and redirects.
 *
 *   GET /connect/oauth2?client_id&response_type=code&scope&redirect_uri&state
 *     unknown client_id, unregistered redirect_uri -> 400 error page (never a redirect to
 *                                                     a URI nobody registered)
 *     response_type, scope or state wrong           -> 302 redirect_uri?error=…&state=…
 *     otherwise                                     -> 200 company picker, form posting to
 *   POST /connect/oauth2/decision    (all checks again: hidden fields are the browser's)
 *     decision=cancel  -> 302 redirect_uri?error=access_denied&state=…
 *     decision=connect -> 302 redirect_uri?code=…&state=…&realmId=…      [oauth_az_code()]
 *
 *   GET /oauth/authorize, /oauth/{portalId}/authorize ?client_id&scope&optional_scope&
 *       redirect_uri&state            any check failing -> 400 error page (HubSpot shows
 *                                      its errors on the authorization page), else the
 *                                      account picker, form posting to
 *   POST /oauth/authorize/decision
 *     decision=cancel  -> 302 redirect_uri?error=access_denied&error_description=…&state=…
 *     decision=connect -> 302 redirect_uri?code=…&state=…              [hubspot_az_code()]
 *
 * Codes live auth_code_ttl_s seconds (a core setting). Pages carry no-store and a strict
 * Content-Security-Policy without form-action (browsers apply form-action to the
 * redirect that follows a form, and this one leaves for the app's origin).
 */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/http.h"
#include "tests/sandbox/authorize.h"

#define AZ_PAGE_MAX     (1u << 20)  /* a rendered page */
#define AZ_FORM_MAX     (16u << 10) /* a decision's body */
#define AZ_LOCATION_MAX 4096        /* a redirect's Location (sb_resp_header's cut) */
#define AZ_ID_MAX       256         /* client_id */
#define AZ_PICK_MAX     64          /* realmId / portalId */
#define AZ_RTYPE_MAX    32          /* response_type */
#define AZ_DECISION_MAX 16          /* decision */

#define INTUIT_DECISION  "/connect/oauth2/decision"
#define HUBSPOT_DECISION "/oauth/authorize/decision"

/* ---- the parameters of one request ---------------------------------------------------- */

enum { F_CLIENT, F_REDIRECT, F_SCOPE, F_OPTIONAL, F_STATE, F_RTYPE, F_PICK, F_DECISION, NF };

static const struct {
    const char *key; /* F_PICK: realmId (Intuit) or portalId (HubSpot) */
    size_t max;
} fields[NF] = {
    {"client_id", AZ_ID_MAX}, {"redirect_uri", AZ_URI_MAX},
    {"scope", AZ_SCOPE_MAX},  {"optional_scope", AZ_SCOPE_MAX},
    {"state", AZ_STATE_MAX},  {"response_type", AZ_RTYPE_MAX},
    {NULL, AZ_PICK_MAX},      {"decision", AZ_DECISION_MAX},
};
/* Every fields[].max plus a NUL each (req_read() asserts it). */
#define AZ_FIELDS_BYTES                                                                            \
    (AZ_ID_MAX + AZ_URI_MAX + 2 * AZ_SCOPE_MAX + AZ_STATE_MAX + AZ_RTYPE_MAX + AZ_PICK_MAX +       \
     AZ_DECISION_MAX + NF)

enum { P_ABSENT = 0, P_OK = 1, P_TOO_LONG = -1 };

struct az_req {
    int hubspot;
    int st[NF];  /* P_* */
    char *v[NF]; /* into buf; "" unless P_OK */
    char buf[AZ_FIELDS_BYTES];
};

/* The value of field f, or NULL unless it was given and fit. */
static const char *val(const struct az_req *q, int f)
{
    return q->st[f] == P_OK ? q->v[f] : NULL;
}

static void set_field(struct az_req *q, int f, const char *s)
{
    if (!s)
        return;
    q->st[f] = strlen(s) > fields[f].max ? P_TOO_LONG : P_OK;
    if (q->st[f] == P_OK)
        memcpy(q->v[f], s, strlen(s) + 1);
}

/* Read the parameters from the query (GET) or the form body (POST, <= AZ_FORM_MAX). */
static void req_read(const struct sb_request *req, int hubspot, struct az_req *q)
{
    char *p = q->buf;
    memset(q->st, 0, sizeof(q->st));
    q->hubspot = hubspot;
    for (int f = 0; f < NF; f++) {
        q->v[f] = p;
        *p = '\0';
        p += fields[f].max + 1;
    }
    assert(p == q->buf + sizeof(q->buf));
    int form = strcmp(req->method, "POST") == 0;
    char *tmp = form ? malloc(AZ_FORM_MAX + 1) : NULL;
    for (int f = 0; f < NF; f++) {
        const char *key = fields[f].key ? fields[f].key : hubspot ? "portalId" : "realmId";
        if (!form)
            set_field(q, f, sb_req_query(req, key));
        else if (tmp && sb_form_get(req->body, key, tmp, AZ_FORM_MAX + 1) == 0)
            set_field(q, f, tmp);
    }
    free(tmp);
}

/* ---- pages ------------------------------------------------------------------------------ */

struct page {
    char *buf;
    size_t len, cap;
    int err;
};

static void page_add(struct page *pg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void page_add(struct page *pg, const char *fmt, ...)
{
    va_list ap;
    int n;
    if (pg->err)
        return;
    va_start(ap, fmt);
    n = vsnprintf(pg->buf ? pg->buf + pg->len : NULL, pg->buf ? pg->cap - pg->len : 0, fmt, ap);
    va_end(ap);
    if (n < 0 || pg->len + (size_t)n >= AZ_PAGE_MAX) {
        pg->err = 1;
        return;
    }
    if (!pg->buf || pg->len + (size_t)n >= pg->cap) {
        size_t cap = pg->cap ? pg->cap : 4096;
        while (cap <= pg->len + (size_t)n)
            cap *= 2;
        char *b = realloc(pg->buf, cap);
        if (!b) {
            pg->err = 1;
            return;
        }
        pg->buf = b;
        pg->cap = cap;
        va_start(ap, fmt);
        vsnprintf(pg->buf + pg->len, pg->cap - pg->len, fmt, ap);
        va_end(ap);
    }
    pg->len += (size_t)n;
}

/* s as HTML text or attribute value: & < > " ' escaped; other bytes as they are (the page
 * is UTF-8 and nothing here is parsed as markup again). */
static void page_esc(struct page *pg, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&':
            page_add(pg, "&amp;");
            break;
        case '<':
            page_add(pg, "&lt;");
            break;
        case '>':
            page_add(pg, "&gt;");
            break;
        case '"':
            page_add(pg, "&quot;");
            break;
        case '\'':
            page_add(pg, "&#39;");
            break;
        default:
            page_add(pg, "%c", *s);
            break;
        }
    }
}

/* Headers a real consent page sends: never cached, never framed, no referrer leak. */
static void page_headers(struct sb_response *resp)
{
    sb_resp_header(resp, "Cache-Control", "no-store");
    sb_resp_header(resp, "Pragma", "no-cache");
    sb_resp_header(resp, "X-Content-Type-Options", "nosniff");
    sb_resp_header(resp, "X-Frame-Options", "DENY");
    sb_resp_header(resp, "Referrer-Policy", "no-referrer");
    sb_resp_header(resp, "Content-Security-Policy",
                   "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'");
}

static void page_send(struct sb_response *resp, int status, struct page *pg)
{
    page_headers(resp);
    if (pg->err) {
        sb_resp_text(resp, 500, "text/plain; charset=utf-8", "page too large or out of memory\n");
    } else {
        sb_resp_text(resp, status, "text/html; charset=utf-8", pg->buf);
    }
    free(pg->buf);
}

static void page_open(struct page *pg, const struct az_req *q, const char *title)
{
    page_add(pg, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                 "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                 "<title>");
    page_esc(pg, title);
    page_add(pg,
             "</title>\n<style>body{font-family:sans-serif;background:#f4f5f8;margin:0}"
             "main{max-width:32em;margin:3em auto;background:#fff;padding:2em;border-radius:8px}"
             "label{display:block;padding:.6em;border:1px solid #ccd;margin:.4em 0;"
             "border-radius:4px}button{padding:.6em 1.6em;margin-right:1em}"
             ".brand{color:#667;font-size:.9em}.error{color:#b00}</style>\n</head>\n<body>\n"
             "<main id=\"%s\">\n<p class=\"brand\">%s (hsqb-sandbox)</p>\n<h1>",
             q->hubspot ? "hubspot-authorize" : "intuit-authorize",
             q->hubspot ? "HubSpot" : "Intuit QuickBooks");
    page_esc(pg, title);
    page_add(pg, "</h1>\n");
}

static void page_close(struct page *pg)
{
    page_add(pg, "</main>\n</body>\n</html>\n");
}

static void error_page(struct sb_response *resp, const struct az_req *q, int status,
                       const char *msg)
{
    struct page pg = {0};
    page_open(&pg, q, "Something went wrong");
    page_add(&pg, "<p class=\"error\" id=\"error\">");
    page_esc(&pg, msg);
    page_add(&pg, "</p>\n");
    page_close(&pg);
    page_send(resp, status, &pg);
}

static void hidden(struct page *pg, const struct az_req *q, int f)
{
    if (!val(q, f))
        return;
    page_add(pg, "<input type=\"hidden\" name=\"%s\" value=\"", fields[f].key);
    page_esc(pg, val(q, f));
    page_add(pg, "\">\n");
}

/* The picker form: hidden copies of the request, the choices (rendered by the caller
 * between the two halves), Connect and Cancel. */
static void form_open(struct page *pg, const struct az_req *q, const char *action)
{
    page_add(pg, "<form method=\"post\" action=\"%s\">\n", action);
    for (int f = F_CLIENT; f <= F_RTYPE; f++)
        hidden(pg, q, f);
    page_add(pg, "<fieldset>\n<legend>%s</legend>\n",
             q->hubspot ? "Choose an account" : "Choose a company");
}

static void form_close(struct page *pg, int can_connect)
{
    page_add(pg,
             "</fieldset>\n<p><button type=\"submit\" name=\"decision\" value=\"connect\" "
             "id=\"connect\"%s>Connect</button>"
             "<button type=\"submit\" name=\"decision\" value=\"cancel\" id=\"cancel\">"
             "Cancel</button></p>\n</form>\n",
             can_connect ? "" : " disabled");
}

static void choice(struct page *pg, const char *name, const char *prefix, const char *id,
                   int checked, const char *label)
{
    page_add(pg, "<label for=\"%s-", prefix);
    page_esc(pg, id);
    page_add(pg, "\"><input type=\"radio\" name=\"%s\" id=\"%s-", name, prefix);
    page_esc(pg, id);
    page_add(pg, "\" value=\"");
    page_esc(pg, id);
    page_add(pg, "\"%s> ", checked ? " checked" : "");
    page_esc(pg, label);
    page_add(pg, "</label>\n");
}

/* 302 to base with params (NULL values skipped), the way both vendors send the browser
 * back; a Location that would not fit is an error page instead. */
static void redirect(struct sb_response *resp, const struct az_req *q, const char *base,
                     const struct http_param *ps, size_t n)
{
    char loc[AZ_LOCATION_MAX], err[128];
    if (http_url_build(loc, sizeof(loc), base, ps, n, err, sizeof(err)) < 0) {
        error_page(resp, q, 400, "The redirect back to the app would be too long.");
        return;
    }
    page_headers(resp);
    sb_resp_text(resp, 302, NULL, NULL);
    sb_resp_header(resp, "Location", "%s", loc);
}

static int code_ttl_s(void)
{
    struct sb_settings st;
    sb_settings_get(&st);
    return st.auth_code_ttl_s;
}

/* ---- Intuit ------------------------------------------------------------------------------ */

/* Scopes Intuit's clients know (intuit-oauth's OAuthClient.scopes); the accounting scope
 * is required, being the only API the sandbox serves. */
static int intuit_scope_ok(const char *scope)
{
    static const char *const known[] = {"com.intuit.quickbooks.accounting",
                                        "com.intuit.quickbooks.payment",
                                        "com.intuit.quickbooks.payroll",
                                        "com.intuit.quickbooks.payroll.timetracking",
                                        "com.intuit.quickbooks.payroll.benefits",
                                        "openid",
                                        "profile",
                                        "email",
                                        "phone",
                                        "address",
                                        "intuit_name"};
    int accounting = 0;
    for (const char *p = scope ? scope : ""; *p;) {
        size_t n = strcspn(p, " "), k = 0;
        while (n && k < sizeof(known) / sizeof(known[0]) &&
               !(strlen(known[k]) == n && memcmp(known[k], p, n) == 0))
            k++;
        if (n && k == sizeof(known) / sizeof(known[0]))
            return 0;
        accounting |= n && k == 0;
        p += n + (p[n] == ' ');
    }
    return accounting;
}

/* The checks of both Intuit routes. 0: fine; 1: resp holds the error page or redirect. */
static int intuit_check(const struct az_req *q, struct sb_response *resp, char *name, size_t namesz)
{
    const char *error = NULL;
    switch (oauth_az_check(val(q, F_CLIENT), val(q, F_REDIRECT), name, namesz)) {
    case AZ_OK:
        break;
    case AZ_BAD_REDIRECT: /* Intuit's words, as users report them */
        error_page(resp, q, 400,
                   "The redirect_uri query parameter value is invalid. Make sure it is listed "
                   "in the Redirect URIs section on your app's keys tab and matches it exactly.");
        return 1;
    default:
        error_page(resp, q, 400, "The client_id query parameter value is invalid.");
        return 1;
    }
    if (!val(q, F_RTYPE))
        error = "invalid_request";
    else if (strcmp(val(q, F_RTYPE), "code") != 0)
        error = "unsupported_response_type";
    else if (!intuit_scope_ok(val(q, F_SCOPE)))
        error = "invalid_scope";
    else if (!val(q, F_STATE) || !val(q, F_STATE)[0])
        error = "invalid_request";
    if (!error)
        return 0;
    struct http_param ps[] = {{"error", error}, {"state", val(q, F_STATE)}};
    redirect(resp, q, val(q, F_REDIRECT), ps, 2);
    return 1;
}

static void intuit_page(const struct az_req *q, struct sb_response *resp)
{
    char name[AZ_NAME_MAX], title[AZ_NAME_MAX + 32];
    struct page pg = {0};
    if (intuit_check(q, resp, name, sizeof(name)))
        return;
    struct json_object *companies = qbo_companies();
    size_t n = json_object_array_length(companies);
    snprintf(title, sizeof(title), "Connect %s to QuickBooks", name);
    page_open(&pg, q, title);
    page_add(&pg, "<p>");
    page_esc(&pg, name);
    page_add(&pg, " wants to read and write the accounting data of the company you choose.</p>\n");
    form_open(&pg, q, INTUIT_DECISION);
    for (size_t i = 0; i < n; i++) {
        struct json_object *c = json_object_array_get_idx(companies, i), *v;
        char label[512];
        const char *id = "", *cname = "", *country = "";
        if (json_object_object_get_ex(c, "realmId", &v))
            id = json_object_get_string(v);
        if (json_object_object_get_ex(c, "CompanyName", &v))
            cname = json_object_get_string(v);
        if (json_object_object_get_ex(c, "Country", &v))
            country = json_object_get_string(v);
        snprintf(label, sizeof(label), "%s (%s) · %s", cname, country, id);
        choice(&pg, "realmId", "realm", id, i == 0, label);
    }
    if (n == 0)
        page_add(&pg, "<p id=\"no-choice\">No QuickBooks Online company to connect.</p>\n");
    form_close(&pg, n > 0);
    page_close(&pg);
    json_object_put(companies);
    page_send(resp, 200, &pg);
}

static int intuit_realm_exists(const char *realm)
{
    struct json_object *companies = qbo_companies(), *v;
    int found = 0;
    for (size_t i = 0; realm && !found && i < json_object_array_length(companies); i++)
        found = json_object_object_get_ex(json_object_array_get_idx(companies, i), "realmId", &v) &&
                strcmp(json_object_get_string(v), realm) == 0;
    json_object_put(companies);
    return found;
}

static void intuit_decision(const struct az_req *q, struct sb_response *resp)
{
    char name[AZ_NAME_MAX], code[AZ_CODE_MAX];
    const char *d = val(q, F_DECISION), *realm = val(q, F_PICK);
    if (intuit_check(q, resp, name, sizeof(name)))
        return;
    if (d && strcmp(d, "cancel") == 0) {
        struct http_param ps[] = {{"error", "access_denied"}, {"state", val(q, F_STATE)}};
        redirect(resp, q, val(q, F_REDIRECT), ps, 2);
        return;
    }
    if (!d || strcmp(d, "connect") != 0) {
        error_page(resp, q, 400, "Choose Connect or Cancel.");
        return;
    }
    if (!intuit_realm_exists(realm)) {
        error_page(resp, q, 400, "Choose one of the companies listed.");
        return;
    }
    if (oauth_az_code(val(q, F_CLIENT), val(q, F_REDIRECT), realm, code_ttl_s(), code,
                      sizeof(code)) < 0) {
        error_page(resp, q, 500, "Cannot issue an authorization code.");
        return;
    }
    snprintf(resp->tenant, sizeof(resp->tenant), "%s", realm);
    struct http_param ps[] = {{"code", code}, {"state", val(q, F_STATE)}, {"realmId", realm}};
    redirect(resp, q, val(q, F_REDIRECT), ps, 3);
}

/* ---- HubSpot ----------------------------------------------------------------------------- */

/* The checks of both HubSpot routes; *granted (caller puts) on success. 0: fine; 1: resp
 * holds the error page. */
static int hubspot_check(const struct az_req *q, struct sb_response *resp, char *name,
                         size_t namesz, struct json_object **granted)
{
    char err[AZ_URI_MAX + 128];
    if (q->st[F_STATE] == P_TOO_LONG || q->st[F_SCOPE] == P_TOO_LONG ||
        q->st[F_OPTIONAL] == P_TOO_LONG) {
        error_page(resp, q, 400, "A parameter of the authorization URL is too long.");
        return 1;
    }
    if (hubspot_az_check(val(q, F_CLIENT), val(q, F_REDIRECT), val(q, F_SCOPE), val(q, F_OPTIONAL),
                         name, namesz, granted, err, sizeof(err)) != AZ_OK) {
        error_page(resp, q, 400, err);
        return 1;
    }
    return 0;
}

static void hubspot_page(const struct az_req *q, int64_t only, struct sb_response *resp)
{
    char name[AZ_NAME_MAX], title[AZ_NAME_MAX + 32];
    struct json_object *granted = NULL;
    struct page pg = {0};
    if (hubspot_check(q, resp, name, sizeof(name), &granted))
        return;
    struct json_object *portals = hubspot_az_portals(only);
    size_t n = json_object_array_length(portals);
    if (only && n == 0) {
        json_object_put(portals);
        json_object_put(granted);
        error_page(resp, q, 404, "That HubSpot account does not exist.");
        return;
    }
    snprintf(title, sizeof(title), "Connect %s to HubSpot", name);
    page_open(&pg, q, title);
    page_add(&pg, "<p>");
    page_esc(&pg, name);
    page_add(&pg, " asks for:</p>\n<ul id=\"scopes\">\n");
    for (size_t i = 0; i < json_object_array_length(granted); i++) {
        page_add(&pg, "<li>");
        page_esc(&pg, json_object_get_string(json_object_array_get_idx(granted, i)));
        page_add(&pg, "</li>\n");
    }
    page_add(&pg, "</ul>\n");
    form_open(&pg, q, HUBSPOT_DECISION);
    for (size_t i = 0; i < n; i++) {
        struct json_object *p = json_object_array_get_idx(portals, i), *v;
        char id[32], label[160];
        json_object_object_get_ex(p, "portalId", &v);
        snprintf(id, sizeof(id), "%lld", (long long)json_object_get_int64(v));
        json_object_object_get_ex(p, "timeZone", &v);
        snprintf(label, sizeof(label), "Account %s · %s", id, json_object_get_string(v));
        choice(&pg, "portalId", "portal", id, i == 0, label);
    }
    form_close(&pg, n > 0);
    page_close(&pg);
    json_object_put(portals);
    json_object_put(granted);
    page_send(resp, 200, &pg);
}

static void hubspot_decision(const struct az_req *q, struct sb_response *resp)
{
    char name[AZ_NAME_MAX], code[AZ_CODE_MAX];
    const char *d = val(q, F_DECISION), *pick = val(q, F_PICK);
    struct json_object *granted = NULL;
    int64_t portal = 0;
    if (hubspot_check(q, resp, name, sizeof(name), &granted))
        return;
    if (d && strcmp(d, "cancel") == 0) {
        struct http_param ps[] = {{"error", "access_denied"},
                                  {"error_description", "The user did not grant access"},
                                  {"state", val(q, F_STATE)}};
        redirect(resp, q, val(q, F_REDIRECT), ps, 3);
    } else if (!d || strcmp(d, "connect") != 0) {
        error_page(resp, q, 400, "Choose Connect or Cancel.");
    } else if (!pick || !*pick || strspn(pick, "0123456789") != strlen(pick) ||
               (portal = strtoll(pick, NULL, 10)) <= 0 ||
               hubspot_az_code(val(q, F_CLIENT), val(q, F_REDIRECT), portal, granted, code_ttl_s(),
                               code, sizeof(code)) < 0) {
        error_page(resp, q, 400, "Choose one of the accounts listed.");
    } else {
        snprintf(resp->tenant, sizeof(resp->tenant), "%lld", (long long)portal);
        struct http_param ps[] = {{"code", code}, {"state", val(q, F_STATE)}};
        redirect(resp, q, val(q, F_REDIRECT), ps, 2);
    }
    json_object_put(granted);
}

/* ---- routing ----------------------------------------------------------------------------- */

/* "/oauth/{digits}/authorize" -> the portal id, else 0. */
static int64_t account_path(const char *path)
{
    const char *p = path + strlen("/oauth/");
    size_t n = strspn(p, "0123456789");
    if (strncmp(path, "/oauth/", 7) != 0 || n == 0 || n > 18 || strcmp(p + n, "/authorize") != 0)
        return 0;
    return strtoll(p, NULL, 10);
}

int authorize_route(const struct sb_request *req, struct sb_response *resp)
{
    const char *path = req->path;
    int64_t only = account_path(path);
    int hubspot =
        only || strcmp(path, "/oauth/authorize") == 0 || strcmp(path, HUBSPOT_DECISION) == 0;
    int decision = strcmp(path, HUBSPOT_DECISION) == 0 || strcmp(path, INTUIT_DECISION) == 0;
    if (!hubspot && strcmp(path, "/connect/oauth2") != 0 && strcmp(path, INTUIT_DECISION) != 0)
        return 0;
    struct az_req *q = malloc(sizeof(*q));
    if (!q) {
        sb_resp_text(resp, 500, "text/plain; charset=utf-8", "out of memory\n");
        return 1;
    }
    q->hubspot = hubspot;
    if (strcmp(req->method, decision ? "POST" : "GET") != 0) {
        sb_resp_header(resp, "Allow", "%s", decision ? "POST" : "GET");
        memset(q->st, 0, sizeof(q->st));
        error_page(resp, q, 405, "Method not allowed.");
    } else if (decision && req->body_len > AZ_FORM_MAX) {
        memset(q->st, 0, sizeof(q->st));
        error_page(resp, q, 413, "The form is too large.");
    } else {
        req_read(req, hubspot, q);
        if (hubspot && decision)
            hubspot_decision(q, resp);
        else if (hubspot)
            hubspot_page(q, only, resp);
        else if (decision)
            intuit_decision(q, resp);
        else
            intuit_page(q, resp);
    }
    free(q);
    return 1;
}
