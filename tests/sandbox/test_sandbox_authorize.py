"""The authorization servers of hsqb-sandbox: Intuit's and HubSpot's consent pages, the
code exchange, Intuit's revoke endpoint and HubSpot's token metadata routes (README
"Authorization servers").

The forms are driven the way a browser would: GET the page, read its form with
html.parser, POST the decision, and follow the 302 by hand (the redirect URIs point
nowhere).

Run: BUILD=build /usr/bin/python3 -m pytest tests/sandbox/test_sandbox_authorize.py
"""
import base64
import html.parser
import json
import time
import urllib.parse

from conftest import PORTAL1, PORTAL2, TOKEN1
from qbo_helpers import (AT, CLIENT_ID, CLIENT_SECRET, OTHER_CLIENT_ID, OTHER_CLIENT_SECRET,
                         RT, TID_RE, US1, US2, get, raw_json, refresh, token_call)

REDIRECT = "https://example.com/cb"  # registered for CLIENT_ID in seed/qbo.json
ACCOUNTING = "com.intuit.quickbooks.accounting"
HS_CLIENT, HS_SECRET = "hsqb-client-id-1", "hsqb-client-secret-1"
HS_REDIRECT = "https://example.com/hubspot/callback"  # seed/hubspot.json
HS_SCOPES = ["oauth", "automation", "crm.objects.contacts.read", "crm.objects.deals.read",
             "e-commerce", "crm.objects.commercepayments.read", "tax_rates.read"]
HS_SEED_RT = "na1-rt-11111111-aaaa-4bbb-8ccc-dddddddddddd"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
INTUIT_REDIRECT_MSG = ("The redirect_uri query parameter value is invalid. Make sure it is "
                       "listed in the Redirect URIs section on your app's keys tab and matches "
                       "it exactly.")


# ---- a tiny browser ------------------------------------------------------------------------

class Form(html.parser.HTMLParser):
    """The page's form: action, hidden fields, radio choices, buttons; and #error."""

    def __init__(self, text):
        super().__init__()
        self.action = None
        self.hidden = {}
        self.radios = []  # (id, name, value, checked)
        self.buttons = {}  # id -> (name, value, disabled)
        self.ids = set()
        self.error = None
        self._in_error = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "form":
            self.action = a["action"]
        elif tag == "input" and a.get("type") == "hidden":
            self.hidden[a["name"]] = a["value"]
        elif tag == "input" and a.get("type") == "radio":
            self.radios.append((a["id"], a["name"], a["value"], "checked" in a))
        elif tag == "button":
            self.buttons[a["id"]] = (a["name"], a["value"], "disabled" in a)
        elif a.get("id") == "error":
            self._in_error = True

    def handle_data(self, data):
        if self._in_error:
            self.error = data
            self._in_error = False


def open_page(sb, path, **params):
    r = sb.get(path + "?" + urllib.parse.urlencode(params))
    return r, Form(r.body.decode("utf-8"))


def decide(sb, form, button, pick=None, **override):
    """Click `button` ("connect"/"cancel") with radio `pick` (its id), as a browser would."""
    fields = dict(form.hidden)
    name, value, _ = form.buttons[button]
    fields[name] = value
    chosen = [r for r in form.radios if r[0] == pick] if pick else \
        [r for r in form.radios if r[3]]
    if chosen:
        fields[chosen[0][1]] = chosen[0][2]
    fields.update(override)
    return sb.post(form.action, urllib.parse.urlencode(fields), headers=FORM)


def back(resp, base):
    """The parameters of a 302 back to `base` (asserted), as a dict."""
    assert resp.status == 302, resp
    loc = resp.headers["Location"]
    assert loc.startswith(base + ("&" if "?" in base else "?")), loc
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(loc).query, strict_parsing=True))


def assert_page_headers(r):
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert r.headers["Cache-Control"] == "no-store"
    assert r.headers["X-Frame-Options"] == "DENY"
    assert "form-action" not in r.headers["Content-Security-Policy"]  # the redirect leaves


def assert_error_page(r, status, text=None):
    assert r.status == status, r
    assert "Location" not in r.headers
    assert_page_headers(r)
    f = Form(r.body.decode("utf-8"))
    assert f.error, r.body
    if text:
        assert text in f.error, f.error
    return f.error


# ---- Intuit -------------------------------------------------------------------------------

def intuit_params(**kw):
    p = {"client_id": CLIENT_ID, "response_type": "code", "scope": ACCOUNTING,
         "redirect_uri": REDIRECT, "state": "st-123"}
    p.update(kw)
    return {k: v for k, v in p.items() if v is not None}


def intuit_connect(sb, realm, **kw):
    """The whole consent: page, Connect with `realm` -> (code, redirect parameters)."""
    params = intuit_params(**kw)
    r, form = open_page(sb, "/connect/oauth2", **params)
    assert r.status == 200, r
    q = back(decide(sb, form, "connect", "realm-" + realm), params["redirect_uri"])
    return q["code"], q


def exchange(sb, code, redirect=REDIRECT, client=(CLIENT_ID, CLIENT_SECRET)):
    return token_call(sb, {"grant_type": "authorization_code", "code": code,
                           "redirect_uri": redirect}, client=client)


def revoke(sb, body, client=(CLIENT_ID, CLIENT_SECRET), content_type="application/json"):
    hdrs = {"Accept": "application/json", "Content-Type": content_type}
    if client:
        pair = ("%s:%s" % client).encode()
        hdrs["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    if not isinstance(body, str):
        body = json.dumps(body)
    return sb.call("POST", "/v2/oauth2/tokens/revoke", body=body, headers=hdrs)


def test_intuit_consent_page_lists_companies_with_stable_ids(sb):
    r, form = open_page(sb, "/connect/oauth2", **intuit_params(scope=ACCOUNTING + " openid"))
    assert r.status == 200
    assert_page_headers(r)
    text = r.body.decode()
    assert form.action == "/connect/oauth2/decision"
    assert form.hidden == {"client_id": CLIENT_ID, "redirect_uri": REDIRECT,
                           "scope": ACCOUNTING + " openid", "state": "st-123",
                           "response_type": "code"}
    realms = [r[2] for r in form.radios]
    assert realms == [US1, US2, "9130357766554433", "4620816365014867790",
                      "4620816365014867791"]  # seed order
    assert all(r[0] == "realm-" + r[2] and r[1] == "realmId" for r in form.radios)
    assert [r[3] for r in form.radios] == [True, False, False, False, False]
    assert "Sandbox Company US 2 (US)" in text and "Maple Leaf Books (CA)" in text
    assert form.buttons == {"connect": ("decision", "connect", False),
                            "cancel": ("decision", "cancel", False)}
    assert "<script" not in text
    assert "Connect hsqb to QuickBooks" in text  # the client's seeded name


def test_intuit_connect_redirects_with_code_state_realm_and_tokens_work(sb):
    code, q = intuit_connect(sb, US2)
    assert list(q) == ["code", "state", "realmId"]
    assert q["state"] == "st-123" and q["realmId"] == US2
    assert code.startswith("AB11") and len(code) < 512
    r = exchange(sb, code)
    assert r.status == 200, r
    assert TID_RE.match(r.headers["intuit_tid"])
    b = raw_json(r)
    assert list(b) == ["token_type", "access_token", "expires_in", "refresh_token",
                       "x_refresh_token_expires_in"]
    assert get(sb, US2, "companyinfo/" + US2, token=b["access_token"]).status == 200
    assert get(sb, US1, "customer/1", token=b["access_token"]).status == 401  # realm-bound
    again = refresh(sb, b["refresh_token"])  # the connection exists for later refreshes
    assert again.status == 200
    assert get(sb, US2, "customer/1", token=raw_json(again)["access_token"]).status == 200
    assert sb.state(realm=US2)["oauth"]["realms"][US2]["refresh_token"] == b["refresh_token"]
    log = sb.requests(vendor="oauth", path="/connect/oauth2/decision")
    assert log[-1]["status"] == 302 and log[-1]["tenant"] == US2


def test_intuit_cancel_redirects_access_denied_with_state(sb):
    params = intuit_params(state="keep me")
    _, form = open_page(sb, "/connect/oauth2", **params)
    q = back(decide(sb, form, "cancel"), REDIRECT)
    assert q == {"error": "access_denied", "state": "keep me"}


def test_intuit_unknown_client_or_unregistered_redirect_is_an_error_page(sb):
    r, _ = open_page(sb, "/connect/oauth2", **intuit_params(client_id="ABnobody"))
    assert_error_page(r, 400, "client_id")
    for uri in ("https://evil.example/cb", REDIRECT + "/", "HTTPS://example.com/cb", None):
        r, _ = open_page(sb, "/connect/oauth2", **intuit_params(redirect_uri=uri))
        assert assert_error_page(r, 400) == INTUIT_REDIRECT_MSG, uri
    # another app's redirect URI is not this one's
    sb.post("/_sandbox/seed", {"intuit_oauth": {"clients": [
        {"client_id": OTHER_CLIENT_ID, "redirect_uris": ["https://other.example/cb"]}]}})
    r, _ = open_page(sb, "/connect/oauth2", **intuit_params(redirect_uri="https://other.example/cb"))
    assert_error_page(r, 400, "redirect_uri")


def test_intuit_bad_parameters_redirect_with_an_error(sb):
    cases = [({"response_type": None}, "invalid_request"),
             ({"response_type": "token"}, "unsupported_response_type"),
             ({"scope": None}, "invalid_scope"),
             ({"scope": "openid email"}, "invalid_scope"),
             ({"scope": ACCOUNTING + " com.example.nope"}, "invalid_scope")]
    for override, error in cases:
        r, _ = open_page(sb, "/connect/oauth2", **intuit_params(**override))
        assert back(r, REDIRECT) == {"error": error, "state": "st-123"}, override
    for state in (None, "", "x" * 513):
        r, _ = open_page(sb, "/connect/oauth2", **intuit_params(state=state))
        assert back(r, REDIRECT) == {"error": "invalid_request"}, state


def test_intuit_decision_checks_everything_again(sb):
    _, form = open_page(sb, "/connect/oauth2", **intuit_params())
    assert_error_page(decide(sb, form, "connect", redirect_uri="https://evil.example/cb"), 400)
    assert_error_page(decide(sb, form, "connect", realmId="123456789"), 400, "compan")
    assert_error_page(decide(sb, form, "connect", decision="maybe"), 400)
    assert back(decide(sb, form, "connect", scope="openid"), REDIRECT)["error"] == "invalid_scope"
    r = sb.get("/connect/oauth2/decision")
    assert r.status == 405 and r.headers["Allow"] == "POST"
    assert sb.post("/connect/oauth2", "").status == 405


def test_intuit_code_is_single_use(sb):
    code, _ = intuit_connect(sb, US1)
    first = raw_json(exchange(sb, code))
    again = exchange(sb, code)
    assert again.status == 400 and raw_json(again) == {"error": "invalid_grant"}
    assert refresh(sb, first["refresh_token"]).status == 400  # reuse revokes what it issued


def test_intuit_code_expires(sb):
    sb.config(auth_code_ttl_s=1)
    code, _ = intuit_connect(sb, US1)
    time.sleep(1.1)
    r = exchange(sb, code)
    assert r.status == 400 and raw_json(r) == {"error": "invalid_grant"}
    assert sb.get("/_sandbox/config").json()["auth_code_ttl_s"] == 1


def test_intuit_code_needs_its_exact_redirect_uri_and_client(sb):
    code, _ = intuit_connect(sb, US1)
    for uri in ("http://127.0.0.1/callback", REDIRECT + "/", None):
        form = {"grant_type": "authorization_code", "code": code}
        if uri:
            form["redirect_uri"] = uri
        r = token_call(sb, form)
        assert r.status == 400 and raw_json(r) == {"error": "invalid_grant"}, uri
    r = exchange(sb, code, client=(OTHER_CLIENT_ID, OTHER_CLIENT_SECRET))
    assert r.status == 400 and raw_json(r) == {"error": "invalid_grant"}
    assert exchange(sb, code).status == 200  # a refused exchange does not spend the code


def test_intuit_state_and_redirect_query_survive(sb):
    sb.post("/_sandbox/seed", {"intuit_oauth": {"clients": [
        {"client_id": CLIENT_ID, "redirect_uris": ["https://app.example/cb?tenant=a&x=1"]}]}})
    state = "é&=?# \"<>'" + "ß" * 10
    code, q = intuit_connect(sb, US1, redirect_uri="https://app.example/cb?tenant=a&x=1",
                             state=state)
    assert q["state"] == state and q["tenant"] == "a" and q["x"] == "1"
    assert exchange(sb, code, redirect="https://app.example/cb?tenant=a&x=1").status == 200
    dump = sb.state(realm=US1)["oauth"]["redirect_uris"][CLIENT_ID]
    assert "https://app.example/cb?tenant=a&x=1" in dump and REDIRECT in dump


def test_intuit_revoke_ends_the_connection(sb):
    code, _ = intuit_connect(sb, US1)
    b = raw_json(exchange(sb, code))
    r = revoke(sb, {"token": b["refresh_token"]})
    assert r.status == 200 and TID_RE.match(r.headers["intuit_tid"])
    assert raw_json(refresh(sb, b["refresh_token"])) == {"error": "invalid_grant"}
    assert get(sb, US1, "customer/1", token=b["access_token"]).status == 401
    assert refresh(sb, RT[US1]).status == 400  # the seeded tokens of the same connection too
    assert get(sb, US1, "customer/1").status == 401
    assert US1 not in sb.state(realm=US1)["oauth"]["realms"]
    assert get(sb, US2, "customer/1").status == 200  # another realm's connection is untouched
    assert refresh(sb, RT[US2]).status == 200


def test_intuit_revoke_with_an_access_token_and_the_log_masks_it(sb):
    r = revoke(sb, {"token": AT[US2]})
    assert r.status == 200
    assert get(sb, US2, "customer/1").status == 401
    assert refresh(sb, RT[US2]).status == 400
    logged = sb.requests(path="/v2/oauth2/tokens/revoke")[-1]
    assert logged["vendor"] == "oauth" and logged["tenant"] == US2
    assert AT[US2] not in logged["body"] and '"token"' in logged["body"]


def test_intuit_revoke_errors(sb):
    assert raw_json(revoke(sb, {"token": RT[US1]}, client=None)) == {"error": "invalid_client"}
    assert revoke(sb, {"token": RT[US1]}, client=(CLIENT_ID, "wrong")).status == 401
    for body in ({}, {"token": ""}, {"token": 5}, "[]"):
        r = revoke(sb, body)
        assert r.status == 400 and raw_json(r) == {"error": "invalid_request"}, body
    r = revoke(sb, {"token": RT[US1]}, client=(OTHER_CLIENT_ID, OTHER_CLIENT_SECRET))
    assert r.status == 400  # another app's connection
    assert refresh(sb, RT[US1]).status == 200
    assert revoke(sb, {"token": "RT1-00-H0-0000000000unknown"}).status == 200  # RFC 7009 §2.2
    assert revoke(sb, "token=" + RT[US1], content_type=FORM["Content-Type"]).status == 200
    assert refresh(sb, RT[US1]).status == 400
    assert sb.get("/v2/oauth2/tokens/revoke").status == 405


def test_redirect_uris_come_from_the_seed(sb):
    new = "http://127.0.0.1:18080/qbo/callback"
    r, _ = open_page(sb, "/connect/oauth2", **intuit_params(redirect_uri=new))
    assert r.status == 400
    r = sb.post("/_sandbox/seed", {"intuit_oauth": {"clients": [
        {"client_id": CLIENT_ID, "redirect_uris": [new]}]}})
    assert r.status == 200
    code, _ = intuit_connect(sb, US1, redirect_uri=new)
    assert exchange(sb, code, redirect=new).status == 200
    assert refresh(sb, RT[US1]).status == 200  # the secret was kept
    for bad in ({"client_id": "ABnew"}, {"client_id": CLIENT_ID, "redirect_uris": "x"},
                {"client_id": CLIENT_ID, "redirect_uris": [""]},
                {"client_id": CLIENT_ID, "name": 5}):
        assert sb.post("/_sandbox/seed", {"intuit_oauth": {"clients": [bad]}}).status == 400, bad


# ---- HubSpot ------------------------------------------------------------------------------

def hs_params(**kw):
    p = {"client_id": HS_CLIENT, "scope": " ".join(HS_SCOPES), "redirect_uri": HS_REDIRECT,
         "state": "hs-state-1"}
    p.update(kw)
    return {k: v for k, v in p.items() if v is not None}


def hs_connect(sb, portal, path="/oauth/authorize", **kw):
    params = hs_params(**kw)
    r, form = open_page(sb, path, **params)
    assert r.status == 200, r
    return back(decide(sb, form, "connect", "portal-" + portal), params["redirect_uri"])


def hs_exchange(sb, code, redirect=HS_REDIRECT, secret=HS_SECRET, path="/oauth/v1/token"):
    form = {"grant_type": "authorization_code", "client_id": HS_CLIENT,
            "client_secret": secret, "redirect_uri": redirect, "code": code}
    return sb.post(path, urllib.parse.urlencode(form), headers=FORM)


def hs_refresh(sb, rt):
    form = {"grant_type": "refresh_token", "client_id": HS_CLIENT, "client_secret": HS_SECRET,
            "refresh_token": rt}
    return sb.post("/oauth/v1/token", urllib.parse.urlencode(form), headers=FORM)


def test_hubspot_consent_page_lists_accounts_and_scopes(sb):
    r, form = open_page(sb, "/oauth/authorize", **hs_params(
        optional_scope="crm.objects.companies.read"))
    assert r.status == 200
    assert_page_headers(r)
    assert form.action == "/oauth/authorize/decision"
    assert form.hidden == {"client_id": HS_CLIENT, "redirect_uri": HS_REDIRECT,
                           "scope": " ".join(HS_SCOPES),
                           "optional_scope": "crm.objects.companies.read",
                           "state": "hs-state-1"}
    assert [(r[0], r[1], r[2]) for r in form.radios] == [
        ("portal-" + PORTAL1, "portalId", PORTAL1), ("portal-" + PORTAL2, "portalId", PORTAL2)]
    text = r.body.decode()
    assert "Connect hsqb to HubSpot" in text and "crm.objects.companies.read" in text
    assert {"connect", "cancel", "scopes"} <= form.ids


def test_hubspot_install_into_a_second_portal(sb):
    q = hs_connect(sb, PORTAL2)
    assert list(q) == ["code", "state"] and q["state"] == "hs-state-1"
    r = hs_exchange(sb, q["code"])
    assert r.status == 200, r
    t = r.json()
    assert list(t) == ["token_type", "refresh_token", "access_token", "hub_id", "scopes",
                       "expires_in"]
    assert t["token_type"] == "bearer" and t["expires_in"] == 1800
    assert t["hub_id"] == int(PORTAL2) and t["scopes"] == HS_SCOPES
    assert t["refresh_token"].startswith("na1-") and t["refresh_token"] != HS_SEED_RT
    assert 150 <= len(t["access_token"]) <= 300
    deals = sb.hs("GET", "/crm/v3/objects/deals?limit=5", token=t["access_token"])
    assert deals.status == 200 and deals.json()["results"]
    assert sb.hs("GET", "/crm/v3/objects/deals/1001", token=t["access_token"]).status == 404
    assert sb.requests(vendor="hubspot")[-1]["tenant"] == PORTAL2
    again = hs_refresh(sb, t["refresh_token"]).json()
    assert again["hub_id"] == int(PORTAL2) and again["refresh_token"] == t["refresh_token"]
    installs = sb.state(portal=PORTAL2)["hubspot"]["portals"][PORTAL2]["oauth_installs"]
    # one code grant, one refresh: counted per installation for tests asserting "one refresh"
    assert installs == [{"client_id": HS_CLIENT, "refresh_token": t["refresh_token"],
                         "scopes": HS_SCOPES, "source": "authorize", "refreshes": 1,
                         "code_grants": 1}]
    # installing again keeps the installation's refresh token
    t2 = hs_exchange(sb, hs_connect(sb, PORTAL2)["code"]).json()
    assert t2["refresh_token"] == t["refresh_token"]
    installs = sb.state(portal=PORTAL2)["hubspot"]["portals"][PORTAL2]["oauth_installs"]
    assert (installs[0]["refreshes"], installs[0]["code_grants"]) == (1, 2)


def test_hubspot_v3_token_endpoint_and_optional_scopes(sb):
    q = hs_connect(sb, PORTAL1, optional_scope="crm.objects.companies.read", state=None)
    assert list(q) == ["code"]  # no state asked, none echoed
    t = hs_exchange(sb, q["code"], path="/oauth/v3/token").json()
    assert t["scopes"] == HS_SCOPES + ["crm.objects.companies.read"]
    assert sb.hs("GET", "/crm/v3/objects/companies/900", token=t["access_token"]).status == 200
    # the seeded installation of the same app and portal is untouched
    assert hs_refresh(sb, HS_SEED_RT).json()["refresh_token"] == HS_SEED_RT


def test_hubspot_token_metadata(sb):
    t = hs_exchange(sb, hs_connect(sb, PORTAL2)["code"]).json()
    r = sb.get("/oauth/v1/access-tokens/" + t["access_token"])
    assert r.status == 200
    info = r.json()
    assert list(info) == ["token", "user", "hub_domain", "scopes", "hub_id", "app_id",
                          "expires_in", "user_id", "token_type"]
    assert info["token"] == t["access_token"] and info["hub_id"] == int(PORTAL2)
    assert info["app_id"] == 1234567 and info["scopes"] == HS_SCOPES
    assert 1790 <= info["expires_in"] <= 1800 and info["token_type"] == "access"
    r = sb.get("/oauth/v1/refresh-tokens/" + t["refresh_token"])
    assert r.status == 200
    info = r.json()
    assert info["client_id"] == HS_CLIENT and info["hub_id"] == int(PORTAL2)
    assert info["token_type"] == "refresh" and info["scopes"] == HS_SCOPES
    assert sb.get("/oauth/v1/access-tokens/" + TOKEN1).status == 404  # private-app token
    assert sb.get("/oauth/v1/access-tokens/CNnope").status == 404
    assert sb.get("/oauth/v1/refresh-tokens/na1-nope").status == 404
    assert sb.post("/oauth/v1/access-tokens/" + t["access_token"], "").status == 405
    logged = [e["path"] for e in sb.requests(vendor="hubspot", path="/oauth/v1/")]
    assert "/oauth/v1/access-tokens/***" in logged and "/oauth/v1/refresh-tokens/***" in logged
    assert not any(t["access_token"] in p or t["refresh_token"] in p for p in logged)


def test_hubspot_access_token_metadata_expires(sb):
    sb.config(hubspot={"access_ttl_s": 1})
    t = hs_exchange(sb, hs_connect(sb, PORTAL1)["code"]).json()
    assert sb.get("/oauth/v1/access-tokens/" + t["access_token"]).status == 200
    time.sleep(1.1)
    assert sb.get("/oauth/v1/access-tokens/" + t["access_token"]).status == 404


def test_hubspot_delete_refresh_token(sb):
    t = hs_exchange(sb, hs_connect(sb, PORTAL2)["code"]).json()
    r = sb.call("DELETE", "/oauth/v1/refresh-tokens/" + t["refresh_token"])
    assert r.status == 204 and r.body == b""
    assert hs_refresh(sb, t["refresh_token"]).json()["status"] == "BAD_REFRESH_TOKEN"
    assert sb.get("/oauth/v1/refresh-tokens/" + t["refresh_token"]).status == 404
    assert sb.call("DELETE", "/oauth/v1/refresh-tokens/" + t["refresh_token"]).status == 404
    # access tokens already issued keep working (HubSpot's documented behaviour)
    assert sb.hs("GET", "/crm/v3/objects/deals?limit=1", token=t["access_token"]).status == 200
    t2 = hs_exchange(sb, hs_connect(sb, PORTAL2)["code"]).json()
    assert t2["refresh_token"] != t["refresh_token"]  # a new install gets a new one
    assert hs_refresh(sb, t2["refresh_token"]).status == 200


def test_hubspot_cancel(sb):
    _, form = open_page(sb, "/oauth/authorize", **hs_params())
    q = back(decide(sb, form, "cancel"), HS_REDIRECT)
    assert q == {"error": "access_denied", "error_description": "The user did not grant access",
                 "state": "hs-state-1"}


def test_hubspot_bad_client_redirect_and_scopes_are_error_pages(sb):
    cases = [({"client_id": "nobody"}, "client_id"),
             ({"redirect_uri": "https://evil.example/cb"},
              "Authorization failed as the redirect URL 'https://evil.example/cb' doesn't match "
              "the app's registered redirect URL"),
             ({"redirect_uri": None}, "redirect URL"),
             ({"scope": None}, "scope"),
             ({"scope": "oauth automation"}, "crm.objects.contacts.read"),  # required missing
             ({"scope": " ".join(HS_SCOPES + ["crm.objects.owners.read"])},
              "crm.objects.owners.read"),
             ({"optional_scope": "crm.objects.owners.read"}, "crm.objects.owners.read")]
    for override, text in cases:
        r, _ = open_page(sb, "/oauth/authorize", **hs_params(**override))
        assert_error_page(r, 400, text)


def test_hubspot_account_specific_url(sb):
    r, form = open_page(sb, "/oauth/%s/authorize" % PORTAL2, **hs_params())
    assert r.status == 200 and [r[2] for r in form.radios] == [PORTAL2]
    r, _ = open_page(sb, "/oauth/999/authorize", **hs_params())
    assert_error_page(r, 404)


def test_hubspot_decision_checks_everything_again(sb):
    _, form = open_page(sb, "/oauth/authorize", **hs_params())
    assert_error_page(decide(sb, form, "connect", portalId="999"), 400, "account")
    assert_error_page(decide(sb, form, "connect", portalId="abc"), 400)
    assert_error_page(decide(sb, form, "connect", redirect_uri="https://evil.example/cb"), 400)
    assert_error_page(decide(sb, form, "connect", scope="oauth"), 400)
    assert sb.get("/oauth/authorize/decision").status == 405


def test_hubspot_code_single_use_redirect_and_expiry(sb):
    code = hs_connect(sb, PORTAL1)["code"]
    r = hs_exchange(sb, code, redirect="http://127.0.0.1/callback")
    assert r.status == 400 and r.json()["status"] == "BAD_REDIRECT_URI"
    assert hs_exchange(sb, code, secret="wrong").json()["status"] == "BAD_CLIENT_SECRET"
    assert hs_exchange(sb, code).status == 200
    r = hs_exchange(sb, code)
    assert r.status == 400 and r.json()["status"] == "BAD_AUTH_CODE"
    sb.config(auth_code_ttl_s=1)
    code = hs_connect(sb, PORTAL1)["code"]
    time.sleep(1.1)
    r = hs_exchange(sb, code)
    assert r.status == 400 and r.json()["status"] == "EXPIRED_AUTH_CODE"
    assert hs_exchange(sb, code).json()["status"] == "BAD_AUTH_CODE"


def test_auth_code_ttl_setting_is_validated_and_reset(sb):
    assert sb.post("/_sandbox/config", {"auth_code_ttl_s": 0}).status == 400
    assert sb.config(auth_code_ttl_s=5)["auth_code_ttl_s"] == 5
    sb.reset()
    assert sb.get("/_sandbox/config").json()["auth_code_ttl_s"] == 600
