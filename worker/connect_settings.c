/* connect_settings.c - a HubSpot portal's settings page (see connect.h): its QuickBooks
 * companies, their tokens' health, connect and disconnect, and the defaults the worker
 * uses when an event leaves them empty (worker/company.h).
 *
 *   GET /settings   portal&link? --> link ok? --> session, 302 /settings   (else 403 page)
 *                   session? --no--> HubSpot app configured? 302 sign-in : 401 page
 *                   the page: every company bound to the session's portal
 *   POST /settings/company     session + CSRF, a realm of the portal, the defaults checked
 *                              (company_defaults_check) --> saved, 302 /settings?saved=R
 *   POST /settings/disconnect  session + CSRF, a realm of the portal --> connect_qbo_drop,
 *                              302 /settings?disconnected=R
 *   POST /settings/signout     session + CSRF --> cookie cleared, a page
 *
 * Who may do what: a session names one portal, and every handler works on that portal's
 * realms only (tenancy_portal_of); a realm of another portal is "not connected to this
 * account", the worker's REALM_NOT_ALLOWED wording, so a page cannot probe for other
 * customers' companies. Every form carries the session's CSRF token.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "worker/company.h"
#include "worker/connect_internal.h"
#include "worker/oauth.h"
#include "worker/tenancy.h"

#define SETTINGS_REALMS 100                         /* companies one page lists */
#define EXPIRY_WARN_MS  (14LL * 24 * 60 * 60 * 1000) /* refresh tokens: warn this early */

/* ---- pieces ---------------------------------------------------------------------------- */

static void when(int64_t ms, char *buf, size_t bufsz)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    if (ms <= 0 || !gmtime_r(&t, &tm) || strftime(buf, bufsz, "%Y-%m-%d %H:%M UTC", &tm) == 0)
        snprintf(buf, bufsz, "unknown");
}

/* The tokens' health in words, and whether it needs the user (class "bad"/"warn"/"ok"). */
static const char *health(const struct oauth_status *st, int found, int64_t now, char *buf,
                          size_t bufsz)
{
    char d[40];

    if (!found || !st->has_refresh_token) {
        snprintf(buf, bufsz, "No tokens stored: connect the company again.");
        return "bad";
    }
    if (st->reauth_required) {
        snprintf(buf, bufsz, "Intuit no longer accepts the tokens: connect the company again.");
        return "bad";
    }
    when(st->refresh_expires_at_ms, d, sizeof d);
    if (st->refresh_expires_at_ms && st->refresh_expires_at_ms <= now) {
        snprintf(buf, bufsz, "Expired on %s: connect the company again.", d);
        return "bad";
    }
    if (st->refresh_expires_at_ms && st->refresh_expires_at_ms - now < EXPIRY_WARN_MS) {
        snprintf(buf, bufsz, "Valid until %s: connect the company again before then.", d);
        return "warn";
    }
    if (st->refresh_expires_at_ms)
        snprintf(buf, bufsz, "Healthy (renewed as it is used; valid until %s).", d);
    else
        snprintf(buf, bufsz, "Healthy.");
    return "ok";
}

static void input(struct connect_page *p, const char *realm, const char *name, const char *label,
                  const char *value, size_t max, const char *hint)
{
    connect_page_html(p, "<label>");
    connect_page_text(p, "%s", label);
    connect_page_html(p, " <input type=\"text\" name=\"");
    connect_page_text(p, "%s", name);
    connect_page_html(p, "\" id=\"");
    connect_page_text(p, "%s-%s", name, realm);
    connect_page_html(p, "\" value=\"");
    connect_page_text(p, "%s", value);
    connect_page_html(p, "\" maxlength=\"");
    connect_page_text(p, "%zu", max);
    connect_page_html(p, "\" placeholder=\"");
    connect_page_text(p, "%s", hint);
    connect_page_html(p, "\"></label>\n");
}

/* One company's section: facts, health, the defaults form, the disconnect form. */
static void company_section(struct connect_call *k, struct connect_page *p, const char *realm,
                            const char *csrf, int64_t now)
{
    char e[256], msg[256], d[40];
    struct company co;
    struct oauth_status st;
    int have = company_get(k->io.redis, realm, &co, e, sizeof e) == 1;
    int found = oauth_status_get(k->io.redis, realm, &st, e, sizeof e);
    const char *cls = health(&st, found == 1, now, msg, sizeof msg);

    connect_page_html(p, "<section class=\"company\" id=\"company-");
    connect_page_text(p, "%s", realm);
    connect_page_html(p, "\">\n<h2>");
    connect_page_text(p, "%s", have && co.name[0] ? co.name : "QuickBooks company");
    connect_page_html(p, "</h2>\n<dl>\n<dt>Company id (realm)</dt><dd class=\"realm\">");
    connect_page_text(p, "%s", realm);
    connect_page_html(p, "</dd>\n<dt>Country</dt><dd class=\"country\">");
    connect_page_text(p, "%s", have && co.country[0] ? co.country : "unknown");
    when(have ? co.connected_at_ms : 0, d, sizeof d);
    connect_page_html(p, "</dd>\n<dt>Connected</dt><dd class=\"connected\">");
    connect_page_text(p, "%s", d);
    connect_page_html(p, "</dd>\n<dt>Tokens</dt><dd class=\"health ");
    connect_page_text(p, "%s", found < 0 ? "warn" : cls);
    connect_page_html(p, "\">");
    connect_page_text(p, "%s", found < 0 ? "Unknown: the store did not answer." : msg);
    connect_page_html(p, "</dd>\n</dl>\n");

    connect_page_html(p, "<form method=\"post\" action=\"/settings/company\" class=\"defaults\">\n"
                         "<p>Defaults for workflow actions that leave these empty:</p>\n");
    connect_page_hidden(p, "csrf", csrf);
    connect_page_hidden(p, "realm", realm);
    input(p, realm, "deposit_account", "Deposit account (sales receipts, paid invoices)",
          have ? co.d.deposit_account : "", COMPANY_ACCOUNT_MAX,
          "Id or exact name; empty: the server's setting, else Undeposited Funds");
    input(p, realm, "income_account", "Income account for created products",
          have ? co.d.income_account : "", COMPANY_ACCOUNT_MAX,
          "Id or exact name; empty: the server's setting, else the first income account");
    input(p, realm, "fee_item", "Item for quote fees", have ? co.d.fee_item : "", COMPANY_ITEM_MAX,
          "Exact name; empty: the server's setting (Fees)");
    input(p, realm, "time_zone", "Time zone of document dates", have ? co.d.time_zone : "",
          COMPANY_ZONE_MAX, "IANA name, e.g. America/Chicago; empty: the HubSpot account's");
    connect_page_html(p, "<button type=\"submit\" id=\"save-");
    connect_page_text(p, "%s", realm);
    connect_page_html(p, "\">Save defaults</button>\n</form>\n");

    connect_page_html(p, "<form method=\"post\" action=\"/settings/disconnect\" "
                         "class=\"disconnect\">\n");
    connect_page_hidden(p, "csrf", csrf);
    connect_page_hidden(p, "realm", realm);
    connect_page_html(p, "<button type=\"submit\" id=\"disconnect-");
    connect_page_text(p, "%s", realm);
    connect_page_html(p, "\">Disconnect this company</button>\n</form>\n</section>\n");
}

/* What the last action did, from the redirect's query (digits only: realms). */
static void notice(struct connect_call *k, struct connect_page *p)
{
    char realm[TENANCY_REALM_MAX + 2];

    if (connect_param(k, "saved", realm, sizeof realm) == 1 && oauth_realm_valid(realm)) {
        connect_page_html(p, "<p id=\"notice\" class=\"ok\">");
        connect_page_text(p, "Saved the defaults of company %s. Workers use them within a "
                             "second or two.", realm);
        connect_page_html(p, "</p>\n");
    } else if (connect_param(k, "disconnected", realm, sizeof realm) == 1 &&
               oauth_realm_valid(realm)) {
        connect_page_html(p, "<p id=\"notice\" class=\"ok\">");
        connect_page_text(p, "Disconnected QuickBooks company %s: workflow actions that name it "
                             "now fail with REALM_NOT_ALLOWED, and nothing more is written to "
                             "its books.", realm);
        connect_page_html(p, "</p>\n");
    }
}

/* ---- GET /settings --------------------------------------------------------------------- */

static void sign_in_needed(struct connect_call *k)
{
    if (connect_hubspot_ready(k->c)) {
        connect_hubspot_signin(k);
        return;
    }
    connect_fail(k, 401, "Sign in first",
                 "This page needs a sign-in, and signing in with HubSpot is not configured on "
                 "this server. Open the settings link its operator gave you (hsqb-worker "
                 "credentials connect-link), valid for %lld minutes.",
                 (long long)(CONNECT_LINK_TTL_MS / 60000));
}

void connect_settings_page(struct connect_call *k)
{
    char link[CONNECT_TOKEN_MAX + 1], csrf[CONNECT_CSRF_LEN + 1], e[256], p_s[24];
    char(*realms)[TENANCY_REALM_MAX + 1] = NULL;
    struct connect_page p;
    int64_t portal = 0, now = clock_wall_ms();
    size_t n = 0;
    int has_link = connect_param(k, "link", link, sizeof link) != 0;

    if (has_link) { /* an operator's link: it proves the portal, once checked */
        if (connect_check_link(k, &portal, link) < 0)
            return;
        if (connect_session_start(k, portal) < 0) {
            connect_fail(k, 500, "Something went wrong", "The session could not be started.");
            return;
        }
        connect_redirect(k, "/settings", NULL, 0);
        return;
    }
    if (!connect_session(k, &portal)) {
        sign_in_needed(k);
        return;
    }
    if (!connect_io(k))
        return;
    if (!(realms = calloc(SETTINGS_REALMS, sizeof *realms)) ||
        tenancy_realms(k->io.redis, portal, realms, SETTINGS_REALMS, &n, e, sizeof e) < 0 ||
        connect_csrf(&k->c->key, k->session, csrf) < 0 || connect_mint_link(k->c, portal, link) < 0) {
        log_warn("connect: the settings of portal %lld: %s", (long long)portal,
                 realms ? e : "out of memory");
        connect_fail(k, 503, "Try again in a moment",
                     "The settings cannot be read right now; please try again in a moment.");
        free(realms);
        return;
    }
    snprintf(p_s, sizeof p_s, "%lld", (long long)portal);
    connect_page_open(&p, "QuickBooks settings");
    connect_page_html(&p, "<p id=\"account\">");
    connect_page_text(&p, "HubSpot account %s: %zu QuickBooks compan%s connected.", p_s, n,
                      n == 1 ? "y" : "ies");
    connect_page_html(&p, "</p>\n");
    notice(k, &p);
    for (size_t i = 0; i < n && i < SETTINGS_REALMS; i++)
        company_section(k, &p, realms[i], csrf, now);
    if (n > SETTINGS_REALMS)
        connect_page_para(&p, "Only the first %d companies are shown.", SETTINGS_REALMS);
    connect_page_html(&p, "<p><a id=\"connect\" href=\"/qbo/connect?portal=");
    connect_page_text(&p, "%s&link=%s", p_s, link);
    connect_page_html(&p, "\">Connect a QuickBooks company</a></p>\n"
                          "<form method=\"post\" action=\"/settings/signout\">\n");
    connect_page_hidden(&p, "csrf", csrf);
    connect_page_html(&p, "<button type=\"submit\" id=\"signout\">Sign out</button>\n</form>\n");
    connect_page_close(&p);
    connect_answer_page(k, 200, &p);
    free(realms);
}

/* ---- the forms ----------------------------------------------------------------------- */

/* The session, its CSRF token, and a realm of its portal: 0 with *portal and realm (and
 * k's I/O), else -1 with the page answered. */
static int form_realm(struct connect_call *k, const char *doing, int64_t *portal, char *realm,
                      size_t realmsz)
{
    if (!connect_session(k, portal)) {
        connect_fail(k, 403, "Sign in again",
                     "Your session ended (sessions last %lld minutes). Nothing was changed; "
                     "open the settings again.",
                     (long long)(CONNECT_SESSION_TTL_MS / 60000));
        return -1;
    }
    if (!connect_session_csrf_ok(k)) {
        log_info("connect: a %s for portal %lld without its CSRF token refused", doing,
                 (long long)*portal);
        connect_fail(k, 403, "Nothing was changed",
                     "The form did not come from this server's page. Open the settings again.");
        return -1;
    }
    if (connect_param(k, "realm", realm, realmsz) != 1 || !oauth_realm_valid(realm)) {
        connect_fail(k, 400, "Nothing was changed", "The form names no QuickBooks company.");
        return -1;
    }
    if (!connect_io(k))
        return -1;
    return connect_realm_owned(k, *portal, realm, "Nothing was changed");
}

/* The redirect back to the page, naming what was done. */
static void back(struct connect_call *k, const char *what, const char *realm)
{
    const struct http_param params[] = {{what, realm}};

    connect_redirect(k, "/settings", params, 1);
}

/* The form's field key into out (blanks around it trimmed): 0, or -1 (too long, or
 * malformed) with msg. */
static int field(struct connect_call *k, const char *key, const char *what, char *out,
                 size_t outsz, char *msg, size_t msgsz)
{
    char buf[CONNECT_FIELD_MAX + 1];
    size_t a = 0, b;
    int r = connect_param(k, key, buf, sizeof buf);

    out[0] = '\0';
    if (r < 0) {
        snprintf(msg, msgsz, "%s could not be read.", what);
        return -1;
    }
    if (r == 0)
        return 0;
    b = strlen(buf);
    while (a < b && (buf[a] == ' ' || buf[a] == '\t'))
        a++;
    while (b > a && (buf[b - 1] == ' ' || buf[b - 1] == '\t'))
        b--;
    if (b - a >= outsz) {
        snprintf(msg, msgsz, "%s is longer than %zu bytes.", what, outsz - 1);
        return -1;
    }
    memcpy(out, buf + a, b - a);
    out[b - a] = '\0';
    return 0;
}

void connect_settings_save(struct connect_call *k)
{
    char realm[TENANCY_REALM_MAX + 2], msg[256], e[256];
    struct company_defaults d;
    int64_t portal;

    if (form_realm(k, "save", &portal, realm, sizeof realm) < 0)
        return;
    memset(&d, 0, sizeof d);
    if (field(k, "deposit_account", "The deposit account", d.deposit_account,
              sizeof d.deposit_account, msg, sizeof msg) < 0 ||
        field(k, "income_account", "The income account", d.income_account, sizeof d.income_account,
              msg, sizeof msg) < 0 ||
        field(k, "fee_item", "The fee item", d.fee_item, sizeof d.fee_item, msg, sizeof msg) < 0 ||
        field(k, "time_zone", "The time zone", d.time_zone, sizeof d.time_zone, msg, sizeof msg) <
            0 ||
        company_defaults_check(&d, msg, sizeof msg) < 0) {
        connect_fail(k, 400, "Not saved", "%s Nothing was changed; go back and correct it.", msg);
        return;
    }
    if (company_defaults_save(k->io.redis, realm, portal, &d, clock_wall_ms(), e, sizeof e) < 0) {
        log_warn("connect: saving the defaults of realm %s: %s", realm, e);
        connect_fail(k, 503, "Try again in a moment",
                     "The defaults could not be saved right now; please try again in a moment.");
        return;
    }
    log_info("connect: portal %lld saved the defaults of realm %s", (long long)portal, realm);
    back(k, "saved", realm);
}

void connect_settings_disconnect(struct connect_call *k)
{
    char realm[TENANCY_REALM_MAX + 2];
    int64_t portal;

    if (form_realm(k, "disconnect", &portal, realm, sizeof realm) < 0 ||
        connect_qbo_drop(k, &k->io, portal, realm) < 0)
        return;
    back(k, "disconnected", realm);
}

void connect_settings_signout(struct connect_call *k)
{
    int64_t portal;

    if (connect_session(k, &portal) && !connect_session_csrf_ok(k)) {
        connect_fail(k, 403, "Still signed in",
                     "The form did not come from this server's page. Open the settings again.");
        return;
    }
    connect_session_end(k);
    connect_fail(k, 200, "Signed out",
                 "You are signed out of the QuickBooks settings on this browser.");
}
