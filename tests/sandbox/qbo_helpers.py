"""Shared constants and helpers for the QuickBooks / Intuit OAuth sandbox tests.

Ids and tokens come from tests/sandbox/seed/qbo.json (see the QBO section of
tests/sandbox/README.md).
"""
import base64
import datetime
import json
import re
import urllib.parse

US1 = "4620816365014867780"  # Sandbox Company US 1, UTC-07:00, seeded invoice 130
US2 = "4620816365014867781"  # Sandbox Company US 2, UTC-05:00
CA1 = "9130357766554433"  # Maple Leaf Books (Canada), CAD, custom txn numbers
AST1 = "4620816365014867790"  # US, Automated Sales Tax on, company in CA, ast_rates by state
MC1 = "4620816365014867791"  # US, multicurrency (home USD, EUR/GBP customers), AST on, NY
AST_RATES = {"CA": "7.25", "NY": "8.875", "TX": "6.25", "WA": "6.5", "*": "5"}  # AST1, MC1
EXCHANGE_RATES = {"EUR": "1.08", "GBP": "1.27"}  # MC1: USD per unit

STATIC_PREFIX = "eyJlbmMiOiJBMTI4Q0JDLUhTMjU2IiwiYWxnIjoiZGlyIn0.."
AT = {
    US1: STATIC_PREFIX + "us1-static-access-token-for-tests-0001",
    US2: STATIC_PREFIX + "us2-static-access-token-for-tests-0002",
    CA1: STATIC_PREFIX + "ca1-static-access-token-for-tests-0003",
    AST1: STATIC_PREFIX + "ast1-static-access-token-for-tests-0004",
    MC1: STATIC_PREFIX + "mc1-static-access-token-for-tests-0005",
}
RT = {
    US1: "RT1-11-H0-1900000000us1seedrefreshtoken01",
    US2: "RT1-12-H0-1900000000us2seedrefreshtoken02",
    CA1: "RT1-13-H0-1900000000ca1seedrefreshtoken03",
    AST1: "RT1-14-H0-1900000000ast1seedrefreshtoken4",
    MC1: "RT1-15-H0-1900000000mc1seedrefreshtoken05",
}
AUTH_CODE_US1 = "AB11us1authorizationcode0001"
CLIENT_ID = "ABhsqbSandboxClientId0000000000000000000000000000"
CLIENT_SECRET = "hsqbSandboxClientSecret000000000000000000"
OTHER_CLIENT_ID = "ABotherAppClientId000000000000000000000000000000"
OTHER_CLIENT_SECRET = "otherAppSecret0000000000000000000000000000"
OFFSET = {US1: -7, US2: -5, CA1: -5, AST1: -7, MC1: -5}

TID_RE = re.compile(r"^1-[0-9a-f]{8}-[0-9a-f]{24}$")
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[-+]\d\d:\d\d$")
META_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[-+]\d\d:\d\d$")


def qbo(sb, method, realm, path, body=None, token=None, accept="application/json",
        headers=None, **params):
    """Call /v3/company/{realm}/{path}; params become the query string."""
    hdrs = dict(headers or {})
    if accept:
        hdrs["Accept"] = accept
    url = "/v3/company/%s/%s" % (realm, path)
    if params:
        url += "?" + urllib.parse.urlencode(params, quote_via=urllib.parse.quote)
    return sb.call(method, url, body=body, headers=hdrs,
                   token=AT.get(realm) if token is None else token)


def get(sb, realm, path, **kw):
    return qbo(sb, "GET", realm, path, **kw)


def post(sb, realm, path, body, **kw):
    return qbo(sb, "POST", realm, path, body=body, **kw)


def query(sb, realm, statement, **kw):
    return qbo(sb, "GET", realm, "query", query=statement, **kw)


def fault(resp):
    """(status, code, element or None, Message, Detail) of a Fault body."""
    err = resp.json()["Fault"]["Error"][0]
    return resp.status, err["code"], err.get("element"), err["Message"], err["Detail"]


def today(realm):
    tz = datetime.timezone(datetime.timedelta(hours=OFFSET[realm]))
    return datetime.datetime.now(tz).date()


def plus_days(date_str, days):
    d = datetime.date.fromisoformat(date_str) + datetime.timedelta(days=days)
    return d.isoformat()


def state(sb, realm):
    return sb.state(realm=realm)["qbo"][realm]


def token_call(sb, form, client=(CLIENT_ID, CLIENT_SECRET), headers=None, basic=True):
    hdrs = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
    if client and basic:
        pair = ("%s:%s" % client).encode()
        hdrs["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    hdrs.update(headers or {})
    return sb.call("POST", "/oauth2/v1/tokens/bearer", body=urllib.parse.urlencode(form),
                   headers=hdrs)


def refresh(sb, rt, **kw):
    return token_call(sb, {"grant_type": "refresh_token", "refresh_token": rt}, **kw)


def raw_json(resp):
    return json.loads(resp.body)
