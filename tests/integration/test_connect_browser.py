"""The account-connection pages in a real browser (issue 18 item 6 and its "Done when"):
Debian's Chromium, headless, clicks through `hsqb-worker ingress`'s connect pages and the
sandbox's Intuit and HubSpot consent pages, as a HubSpot user would, and the test checks
what every page showed, what Redis holds and what the sandbox saw.

The browser is tests/browser/drive.mjs (playwright-core) behind tests/integration/browser.py;
every walk keeps its plan, its answer and one screenshot per step in
$BUILD/test-logs/browser/<test>/<walk>/. `make screenshots` (HSQB_SCREENSHOTS set) also
copies the README's pictures to tests/browser/screenshots/.

The stack is the session's (conftest.py); this module adds one ingress configured for the
connect flows (ingress.session_secret, oauth.authorize_url and oauth.revoke_url,
hubspot.oauth.* at the sandbox) and registers its callback URLs with the sandbox's Intuit
client and HubSpot app before every test (a sandbox reset forgets them). Portal 2
(243987001) connects US1 and US2, which the harness bound to portal 1, so they are unbound
first; the next test's reset binds them back.

    KAFKA=apache BUILD=build /usr/bin/python3 -m pytest -q tests/integration/test_connect_browser.py
"""
import base64
import hashlib
import hmac
import os
import re
import secrets
import time
import urllib.parse

import pytest

import harness
from browser import Browser, Walk
from harness import AST1, PORTAL1, PORTAL2, US1, US2

SESSION_SECRET = "browser-test-session-secret-6f1c0e9a4b7d2853c1e0"  # >= 32 bytes
STRANGER = 555000111  # no HubSpot token, nothing bound
NEW_PORTAL = 301000333  # an account that installs the app in test_hubspot_install
HS_APP = next(a for p in harness._HS["portals"] for a in p.get("oauth_apps", [])
              if a["client_id"] == "hsqb-client-id-1")
INTUIT_CLIENT = harness._QBO["intuit_oauth"]["clients"][0]["client_id"]
COMPANY = {r["realm_id"]: r["CompanyInfo"]["CompanyName"]
           for r in harness._QBO["qbo"]["realms"]}
PREFIX = harness.KEY_PREFIX
REVOKE_PATH = "/v2/oauth2/tokens/revoke"
TOKEN_PATH = "/oauth2/v1/tokens/bearer"


@pytest.fixture(scope="module")
def ingress(hsqb):
    sb = hsqb.env["SANDBOX_URL"]
    ing = hsqb.start_ingress({
        "HSQB_INGRESS_SESSION_SECRET": SESSION_SECRET,
        "HSQB_OAUTH_AUTHORIZE_URL": sb + "/connect/oauth2",
        "HSQB_OAUTH_REVOKE_URL": sb + REVOKE_PATH,
        "HSQB_HUBSPOT_OAUTH_AUTHORIZE_URL": sb + "/oauth/authorize",
        "HSQB_HUBSPOT_OAUTH_CLIENT_ID": HS_APP["client_id"],
        "HSQB_HUBSPOT_OAUTH_CLIENT_SECRET": HS_APP["client_secret"],
        "HSQB_HUBSPOT_OAUTH_SCOPES": ",".join(HS_APP["scopes"]),
        "HSQB_HUBSPOT_OAUTH_OPTIONAL_SCOPES": ",".join(HS_APP["optional_scopes"]),
    })
    yield ing
    ing.stop()


class Flow:
    """One test's view: the stack, the ingress, a browser whose walks log under
    test-logs/browser/<test>/."""

    def __init__(self, h, ing, browser):
        self.h, self.ing, self.browser = h, ing, browser
        self.sb = h.env["SANDBOX_URL"]

    def links(self, portal):
        """(connect URL, disconnect URL) that `credentials connect-link` prints for portal."""
        r = self.h.cli(["credentials", "connect-link", "--portal", str(portal)],
                       env={"HSQB_INGRESS_SESSION_SECRET": SESSION_SECRET,
                            "HSQB_INGRESS_PUBLIC_URL": self.ing.public_url})
        assert r.returncode == 0, r.stderr
        got = dict(re.findall(r"^(connect|disconnect):\s+(\S+)$", r.stdout, re.M))
        assert got["connect"].startswith(self.ing.public_url + "/qbo/connect?portal=%d&link=" %
                                         portal), r.stdout
        return got["connect"], got["disconnect"]

    def connect(self, portal, realm, walk_name, keep=False):
        """The whole connect of realm through the browser; returns the walk (steps connect,
        pick, callback), after checking each page."""
        url, _ = self.links(portal)
        w = self.browser.walk(walk_name, [
            {"name": "connect", "goto": url, "keep": keep and "intuit-consent"},
            {"name": "pick", "check": "#realm-" + realm},
            {"name": "callback", "click": "#connect", "keep": keep and "qbo-connected"},
        ])
        consent = w["connect"]
        # the link sent the browser on to Intuit's consent page, a state for this portal
        assert consent["navigations"][0]["url"] == url and consent["navigations"][0]["status"] == 302
        assert consent["status"] == 200 and consent["url"].startswith(self.sb + "/connect/oauth2?")
        assert "state=v1.qbo-connect.%d." % portal in consent["url"]
        assert consent["title"] == "Connect hsqb to QuickBooks"
        assert "%s (US) · %s" % (COMPANY[realm], realm) in consent["ids"]["realm-" + realm]["label"]
        assert w["pick"]["ids"]["realm-" + realm]["checked"] is True
        cb = w["callback"]
        assert cb["url"].startswith(self.ing.public_url + "/qbo/callback?code="), cb["url"]
        assert "realmId=%s" % realm in cb["url"]
        assert cb["status"] == 200, cb["text"]
        assert cb["h1"] == "QuickBooks connected"
        assert Walk.text_of(cb, "result") == "Connected %s (realm %s) to HubSpot account %d." % (
            COMPANY[realm], realm, portal)
        assert cb["headers"]["content-security-policy"].startswith("default-src 'none'")
        assert cb["headers"]["x-frame-options"] == "DENY"
        return w

    def owner(self, realm):
        v = self.h.redis.get("%stenancy:realm:{%s}" % (PREFIX, realm))
        return int(v) if v is not None else None

    def realms_of(self, portal):
        return {m.decode() for m in self.h.redis.smembers("%stenancy:portal:{%d}" % (PREFIX, portal))}

    def tokens(self, realm):
        """What Redis holds for realm's tokens ({} when none)."""
        return self.h.redis.hgetall("%soauth:{%s}" % (PREFIX, realm))

    def has_tokens(self, realm):
        return bool(self.tokens(realm))

    def calls(self, since, path=None):
        """Requests the sandbox logged after since: to HubSpot, QuickBooks and Intuit's token
        and revoke endpoints (the consent pages are the browser's, not the worker's)."""
        out = [r for r in self.h.sandbox.requests(since=since)
               if r.get("vendor") in ("hubspot", "qbo", "oauth")]
        return [r for r in out if path is None or r.get("path", "").startswith(path)]


def mint_state(portal, expires_ms, purpose="qbo-connect", secret=SESSION_SECRET):
    """A state as worker/connect_state.h defines it, signed here with Python's hmac: a
    genuine MAC over whatever the fields say (so an expired one is expired, not forged)."""
    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    body = "v1.%s.%d.%d.%s" % (purpose, portal, expires_ms, b64(secrets.token_bytes(16)))
    mac = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
    return body + "." + b64(mac)


def with_state(url, state):
    """url with its state parameter replaced."""
    u = urllib.parse.urlsplit(url)
    q = [(k, state if k == "state" else v) for k, v in urllib.parse.parse_qsl(u.query)]
    return urllib.parse.urlunsplit(u._replace(query=urllib.parse.urlencode(q)))


@pytest.fixture
def flow(request, hsqb, ingress):
    h = hsqb
    sb = harness.Sandbox(h.env["SANDBOX_URL"])
    # The ingress's callbacks as registered redirect URIs (Intuit adds to a client's list;
    # HubSpot's newest entry of a client_id defines the app).
    sb.seed({"intuit_oauth": {"clients": [{"client_id": INTUIT_CLIENT,
                                           "redirect_uris": [ingress.public_url + "/qbo/callback"]}]}})
    app = dict(HS_APP, redirect_uris=HS_APP["redirect_uris"] +
               [ingress.public_url + "/hubspot/oauth-callback"])
    sb.seed({"hubspot": {"portals": [{"portalId": PORTAL1, "oauth_apps": [app]}]}})
    logs = harness.build_dir() / "test-logs" / "browser" / request.node.name
    f = Flow(h, ingress, Browser(logs))
    for realm in (US1, US2):
        h.unbind(realm)
    yield f
    # the next test's reset stores the seed's QBO tokens again and binds US1/US2 to portal 1;
    # the portals' HubSpot tokens are put back here (an install or sign-in may have
    # replaced one, and the other tests' workers have no HubSpot app to refresh it with)
    h.store_credentials(realms=(), portals=(PORTAL1, PORTAL2))


def refused(h, ev, code):
    data = h.wait_result(ev, timeout=60)["data"]
    assert data["status"] == "failed" and data["error"]["code"] == code, data
    assert "no call was made" in data["error"]["message"]
    return data


def booked(h, ev):
    data = h.wait_result(ev, timeout=60)["data"]
    assert data["status"] == "succeeded", data.get("error")
    assert len(harness.docs_for_event(h.sandbox.qbo(ev.doc["data"]["inputFields"]["qbo_realm_id"]),
                                      ev.id)) == 1
    return data


def invoice(h, realm, portal=PORTAL2):
    deal = 1101 if portal == PORTAL2 else 1005
    return h.event("create_invoice", "DEAL", deal, realm, portal=portal,
                   create_missing_products="true")


def test_two_companies_connected_through_the_browser_book_and_disconnect_stops_one(flow):
    f, h = flow, flow.h
    assert f.owner(US1) is None and f.owner(US2) is None
    mark = h.sandbox.mark()

    # A HubSpot user of portal 2 connects two companies, one consent each.
    f.connect(PORTAL2, US1, "connect-us1", keep=True)
    f.connect(PORTAL2, US2, "connect-us2")
    assert f.owner(US1) == PORTAL2 and f.owner(US2) == PORTAL2
    assert f.realms_of(PORTAL2) == {US1, US2}
    assert f.has_tokens(US1) and f.has_tokens(US2)
    exchanges = f.calls(mark, TOKEN_PATH)
    assert len(exchanges) == 2 and all(r["status"] == 200 for r in exchanges), exchanges

    # Another portal's company, a portal nobody connected: refused before any call.
    mark = h.sandbox.mark()
    other = invoice(h, AST1)  # AST1 is portal 1's
    stranger = invoice(h, US1, portal=STRANGER)
    h.produce(other, stranger)
    refused(h, other, "REALM_NOT_ALLOWED")
    refused(h, stranger, "PORTAL_NOT_CONNECTED")
    assert f.calls(mark) == [], "a refused event reached an API"

    # Both connected companies take portal 2's events.
    evs = [invoice(h, US1), invoice(h, US2)]
    h.produce(*evs)
    for ev in evs:
        booked(h, ev)

    # A revoke URL that is not Intuit's (a 404 there) disconnects nothing: deleting the
    # tokens unrevoked would leave the app connected in QuickBooks.
    _, disconnect = f.links(PORTAL2)
    h.sandbox.add_fault(path=REVOKE_PATH, vendor="oauth", status=404, times=1)
    w = f.browser.walk("disconnect-revoke-404", [
        {"name": "companies", "goto": disconnect},
        {"name": "refused", "click": "#disconnect-" + US1},
    ])
    assert w["refused"]["status"] == 502 and w["refused"]["h1"] == "Not disconnected", \
        w["refused"]["text"]
    assert f.owner(US1) == PORTAL2 and f.has_tokens(US1)

    # Disconnect US1 with the disconnect page's button.
    mark = h.sandbox.mark()
    w = f.browser.walk("disconnect-us1", [
        {"name": "companies", "goto": disconnect, "keep": "qbo-disconnect"},
        {"name": "disconnected", "click": "#disconnect-" + US1, "keep": "qbo-disconnected"},
        {"name": "after", "goto": disconnect},
    ])
    page = w["companies"]
    assert page["status"] == 200 and page["h1"] == "QuickBooks companies", page["text"]
    assert "connected to HubSpot account %d: 2." % PORTAL2 in page["text"]
    assert "%s (realm %s)" % (COMPANY[US1], US1) in page["text"]  # named, not just numbered
    assert {"disconnect-" + US1, "disconnect-" + US2} <= set(page["ids"])
    assert any(fl["name"] == "csrf" and fl["value"] for fm in page["forms"] for fl in fm["fields"])
    done = w["disconnected"]
    assert done["status"] == 200 and done["h1"] == "QuickBooks disconnected", done["text"]
    assert Walk.text_of(done, "result") == (
        "Disconnected QuickBooks company %s from HubSpot account %d." % (US1, PORTAL2))
    assert "REALM_NOT_ALLOWED" in done["text"]
    after = w["after"]
    assert "connected to HubSpot account %d: 1." % PORTAL2 in after["text"]
    assert "disconnect-" + US1 not in after["ids"] and "disconnect-" + US2 in after["ids"]

    # Intuit saw the revoke; the realm is unbound and its tokens gone.
    revokes = f.calls(mark, REVOKE_PATH)
    assert len(revokes) == 1 and revokes[0]["method"] == "POST" and revokes[0]["status"] == 200
    assert f.owner(US1) is None and not f.has_tokens(US1)
    assert f.realms_of(PORTAL2) == {US2}

    # Every replica sees the unbind within a second: US1 refused, US2 still books.
    time.sleep(harness.TENANCY_EPOCH_S + 0.3)
    mark = h.sandbox.mark()
    gone, still = invoice(h, US1), invoice(h, US2)
    h.produce(gone, still)
    refused(h, gone, "REALM_NOT_ALLOWED")
    booked(h, still)
    assert all(r.get("tenant") != US1 for r in f.calls(mark)), "the disconnected realm was called"


def test_forged_expired_and_replayed_states_are_refused(flow):
    f, h = flow, flow.h
    url, _ = f.links(PORTAL2)
    # Consent to US2, but hold the redirect back to the ingress: a genuine, unspent code
    # and state to tamper with.
    w = f.browser.walk("consent-held", [
        {"name": "connect", "goto": url},
        {"name": "pick", "check": "#realm-" + US2},
        {"name": "decision", "click": "#connect", "hold": "/qbo/callback"},
    ], profile="user")
    callback = w["decision"]["held"]
    assert callback and callback.startswith(f.ing.public_url + "/qbo/callback?code="), callback
    state = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(callback).query))["state"]
    assert state.startswith("v1.qbo-connect.%d." % PORTAL2)

    # Forged: the same state claiming portal 1 (the MAC no longer matches). Expired: a
    # correctly signed state whose ten minutes are over.
    forged = state.replace(".%d." % PORTAL2, ".%d." % PORTAL1, 1)
    expired = mint_state(PORTAL2, int(time.time() * 1000) - 60_000)
    mark = h.sandbox.mark()
    # The genuine answer opened in another browser (sent to a victim, say): refused before
    # anything is spent; the browser that started the sign-in still finishes it below.
    w = f.browser.walk("other-browser", [{"name": "elsewhere", "goto": callback}])
    assert w["elsewhere"]["status"] == 400, w["elsewhere"]["text"]
    assert w["elsewhere"]["h1"] == "Start again from this browser"
    w = f.browser.walk("states-refused", [
        {"name": "forged", "goto": with_state(callback, forged)},
        {"name": "expired", "goto": with_state(callback, expired), "keep": "qbo-state-expired"},
        {"name": "genuine", "goto": callback},
        {"name": "replayed", "goto": callback},
    ], profile="user")
    for name, title in (("forged", "This sign-in cannot be trusted"),
                        ("expired", "This sign-in expired"),
                        ("replayed", "This sign-in was already used")):
        page = w[name]
        assert page["status"] == 400 and page["h1"] == title, (name, page["text"])
        assert "Nothing was changed" in page["text"], (name, page["text"])
    # The genuine one (after the forged and expired tries) connects: the code was good.
    assert w["genuine"]["status"] == 200
    assert Walk.text_of(w["genuine"], "result") == (
        "Connected %s (realm %s) to HubSpot account %d." % (COMPANY[US2], US2, PORTAL2))
    # One code exchange, the genuine one's: the refusals came before any token call.
    assert len(f.calls(mark, TOKEN_PATH)) == 1
    assert f.owner(US2) == PORTAL2 and US2 not in f.realms_of(PORTAL1)

    # A spent state with a fresh code of another company: refused, nothing bound.
    w = f.browser.walk("consent-held-us1", [
        {"name": "connect", "goto": url},
        {"name": "pick", "check": "#realm-" + US1},
        {"name": "decision", "click": "#connect", "hold": "/qbo/callback"},
    ], profile="user")
    fresh = w["decision"]["held"]
    tokens = f.tokens(US1)  # the harness's, stored by `credentials qbo`
    mark = h.sandbox.mark()
    w = f.browser.walk("state-replayed", [{"name": "replayed", "goto": with_state(fresh, state)}],
                       profile="user")
    assert w["replayed"]["status"] == 400
    assert w["replayed"]["h1"] == "This sign-in was already used", w["replayed"]["text"]
    assert f.calls(mark) == []
    assert f.owner(US1) is None and f.tokens(US1) == tokens


def test_hubspot_install_through_the_browser(flow):
    f, h = flow, flow.h
    # An account new to hsqb installs the app from the app's install URL.
    h.sandbox.seed({"hubspot": {"portals": [{"portalId": NEW_PORTAL,
                                             "timeZone": "America/Chicago"}]}})
    mark = h.sandbox.mark()
    w = f.browser.walk("hubspot-install", [
        {"name": "install", "goto": f.ing.public_url + "/hubspot/install", "keep": "hubspot-consent"},
        {"name": "pick", "check": "#portal-%d" % NEW_PORTAL},
        {"name": "installed", "click": "#connect", "keep": "hubspot-installed"},
        {"name": "connect-qbo", "click": "#connect"},
    ])
    consent = w["install"]
    assert consent["status"] == 200 and consent["url"].startswith(f.sb + "/oauth/authorize?")
    assert consent["title"] == "Connect hsqb to HubSpot"
    assert "state=v1.hubspot-install.0." in consent["url"]
    assert set(consent["ids"]["scopes"]["text"].split()) >= set(HS_APP["scopes"])
    assert "portal-%d" % NEW_PORTAL in consent["ids"]
    done = w["installed"]
    assert done["url"].startswith(f.ing.public_url + "/hubspot/oauth-callback?code=")
    assert done["status"] == 200 and done["h1"] == "HubSpot app installed", done["text"]
    assert ("Installed in HubSpot account %d" % NEW_PORTAL) in Walk.text_of(done, "result")
    link = done["ids"]["connect"]["href"]
    assert link.startswith(f.ing.public_url + "/qbo/connect?portal=%d&link=v1.link.%d." % (
        NEW_PORTAL, NEW_PORTAL)), link
    # The page's connect link works: it leads on to Intuit's consent for that account.
    nxt = w["connect-qbo"]
    assert nxt["status"] == 200 and nxt["url"].startswith(f.sb + "/connect/oauth2?")
    assert "state=v1.qbo-connect.%d." % NEW_PORTAL in nxt["url"]

    # The account's tokens are stored; HubSpot saw one code exchange.
    assert h.redis.exists("%shstoken:{%d}" % (PREFIX, NEW_PORTAL)) == 1
    assert h.redis.exists("%shsoauth:{%d}" % (PREFIX, NEW_PORTAL)) == 1
    ex = [r for r in f.calls(mark, "/oauth/v") if "token" in r.get("path", "")
          and r.get("method") == "POST"]
    assert len(ex) == 1 and ex[0]["status"] == 200, ex
    installs = h.sandbox.state(portal=NEW_PORTAL)["hubspot"]["portals"][str(NEW_PORTAL)][
        "oauth_installs"]
    assert [(i["client_id"], i["source"]) for i in installs] == [(HS_APP["client_id"], "authorize")]
    stored = h.stored_token("%shsoauth:{%d}" % (PREFIX, NEW_PORTAL), "refresh_token")
    assert stored is not None and stored == installs[0]["refresh_token"]


def test_settings_page_through_the_browser(flow):
    """The app's settings page (GET /settings), reached as from HubSpot's settings link:
    sign in with HubSpot, connect two companies from it, set a company's defaults (the
    worker deposits a sales receipt where they say), refuse a bad one, disconnect a
    company, sign out."""
    f, h = flow, flow.h
    settings = f.ing.public_url + "/settings"
    checking = h.sandbox.qbo_select(US2, "Account", "Name = 'Checking'")[0]["Id"]

    # No session: the page sends the user to HubSpot to sign in, and back.
    w = f.browser.walk("settings-sign-in", [
        {"name": "open", "goto": settings},
        {"name": "pick", "check": "#portal-%d" % PORTAL2},
        {"name": "signed-in", "click": "#connect"},
    ], profile="user")
    consent = w["open"]
    assert consent["navigations"][0]["status"] == 302
    assert consent["url"].startswith(f.sb + "/oauth/authorize?"), consent["url"]
    assert "state=v1.hubspot-signin.0." in consent["url"]
    page = w["signed-in"]
    assert page["url"] == settings and page["status"] == 200, (page["url"], page["text"])
    assert page["h1"] == "QuickBooks settings"
    assert Walk.text_of(page, "account") == (
        "HubSpot account %d: 0 QuickBooks companies connected." % PORTAL2)
    assert page["headers"]["content-security-policy"].startswith("default-src 'none'; style-src 'sha256-")

    # Connect two companies from the page (the session carries over: no link to paste).
    for realm in (US1, US2):
        w = f.browser.walk("settings-connect-" + realm, [
            {"name": "settings", "goto": settings},
            {"name": "consent", "click": "#connect"},
            {"name": "pick", "check": "#realm-" + realm},
            {"name": "connected", "click": "#connect"},
            {"name": "back", "click": "#settings"},
        ], profile="user")
        assert "state=v1.qbo-connect.%d." % PORTAL2 in w["consent"]["url"]
        assert Walk.text_of(w["connected"], "result") == (
            "Connected %s (realm %s) to HubSpot account %d." % (COMPANY[realm], realm, PORTAL2))
        assert w["back"]["url"] == settings
    assert f.owner(US1) == PORTAL2 and f.owner(US2) == PORTAL2
    page = w["back"]
    assert Walk.text_of(page, "account") == (
        "HubSpot account %d: 2 QuickBooks companies connected." % PORTAL2)
    for realm in (US1, US2):
        assert "company-" + realm in page["ids"] and "save-" + realm in page["ids"]
        assert COMPANY[realm] in Walk.text_of(page, "company-" + realm)
        assert "Healthy" in Walk.text_of(page, "company-" + realm)

    # Defaults for US2: saved, shown, used by the worker.
    w = f.browser.walk("settings-defaults", [
        {"name": "settings", "goto": settings},
        {"name": "deposit", "fill": "#deposit_account-" + US2, "value": "Checking", "shot": False},
        {"name": "zone", "fill": "#time_zone-" + US2, "value": "America/Chicago", "shot": False},
        {"name": "saved", "click": "#save-" + US2, "keep": "settings"},
        {"name": "bad-zone", "fill": "#time_zone-" + US1, "value": "Mars/Olympus", "shot": False},
        {"name": "refused", "click": "#save-" + US1},
    ], profile="user")
    saved = w["saved"]
    assert saved["url"] == settings + "?saved=" + US2, saved["url"]
    assert "Saved the defaults of company %s" % US2 in Walk.text_of(saved, "notice")
    assert saved["ids"]["deposit_account-" + US2]["value"] == "Checking"
    assert saved["ids"]["time_zone-" + US2]["value"] == "America/Chicago"
    stored = h.redis.hgetall("%scompany:{%s}" % (PREFIX, US2))
    assert stored[b"deposit_account"] == b"Checking" and stored[b"portal"] == str(PORTAL2).encode()
    refused_page = w["refused"]
    assert refused_page["status"] == 400 and refused_page["h1"] == "Not saved", refused_page["text"]
    assert b"time_zone" not in h.redis.hgetall("%scompany:{%s}" % (PREFIX, US1))

    time.sleep(harness.TENANCY_EPOCH_S + 0.3)  # every worker sees the save within a second
    ev = h.event("create_sales_receipt", "DEAL", 1101, US2, portal=PORTAL2,
                 create_missing_products="true")
    h.produce(ev)
    booked(h, ev)
    docs = harness.docs_for_event(h.sandbox.qbo(US2), ev.id)
    assert [k for k, _ in docs] == ["SalesReceipt"], docs
    assert docs[0][1]["DepositToAccountRef"]["value"] == checking, docs[0][1].get("DepositToAccountRef")

    # Disconnect US1 from the page; then sign out.
    mark = h.sandbox.mark()
    w = f.browser.walk("settings-disconnect", [
        {"name": "settings", "goto": settings},
        {"name": "disconnected", "click": "#disconnect-" + US1},
        {"name": "signed-out", "click": "#signout"},
        {"name": "again", "goto": settings},
    ], profile="user")
    done = w["disconnected"]
    assert done["url"] == settings + "?disconnected=" + US1, done["url"]
    assert "REALM_NOT_ALLOWED" in Walk.text_of(done, "notice")
    assert Walk.text_of(done, "account") == (
        "HubSpot account %d: 1 QuickBooks company connected." % PORTAL2)
    assert len(f.calls(mark, REVOKE_PATH)) == 1
    assert f.owner(US1) is None and not f.has_tokens(US1)
    assert not h.redis.exists("%scompany:{%s}" % (PREFIX, US1))
    assert w["signed-out"]["h1"] == "Signed out"
    again = w["again"]
    assert again["url"].startswith(f.sb + "/oauth/authorize?"), again["url"]
