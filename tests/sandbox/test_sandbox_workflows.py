"""HubSpot's workflow engine in hsqb-sandbox: action definitions (developer key), enrolment,
signed delivery to an actionUrl, HubSpot's retry policy, callback completion and expiry, and
the workflow editor's optionsUrl call (reference hubspot-api.md §3, spec17.md).

The app side is a tiny HTTP server in this process (`App`) that records every request and
answers from a script (status, body, headers, delay). It checks the v2 and v3 signatures
with Python's own hashlib/hmac, independently of the C code that made them.
"""
import base64
import datetime
import hashlib
import hmac
import http.server
import json
import re
import threading
import time

import pytest

from conftest import PORTAL1, PORTAL2, TOKEN1, Sandbox

APP_ID = 1234567
DEV_KEY = "devkey-11111111-2222-4333-8444-555555555555"
SECRET = "hsqb-app-secret-1"
REALM = "4620816365014867780"
CB_RE = re.compile(r"^ap-102670506-(\d+)-(\d+)-0$")
BLOCK = {"outputFields": {"hs_execution_state": "BLOCK", "hs_expiration_duration": "P1W"}}


# ---- the app: actionUrl / optionsUrl -------------------------------------------------------

class App:
    """An HTTP/1.1 server answering from a script; every request is recorded."""

    def __init__(self):
        self.requests = []
        self.script = []  # answers used in order, then `default`
        self.default = {"status": 200, "body": BLOCK}
        self.hook = None  # called with each recorded request before answering
        self.cv = threading.Condition()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                rec = {"path": self.path, "headers": self.headers, "body": body,
                       "t": time.monotonic()}
                with owner.cv:
                    owner.requests.append(rec)
                    answer = owner.script.pop(0) if owner.script else owner.default
                    owner.cv.notify_all()
                if owner.hook:
                    owner.hook(rec)
                time.sleep(answer.get("delay", 0))
                raw = answer.get("body", b"")
                if not isinstance(raw, (bytes, str)):
                    raw = json.dumps(raw)
                if isinstance(raw, str):
                    raw = raw.encode()
                try:
                    self.send_response(answer["status"])
                    for k, v in answer.get("headers", {}).items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", answer.get("type", "application/json"))
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except OSError:
                    pass  # the sandbox gave up waiting (timeout tests)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def url(self, path="/hubspot/actions/create_invoice"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def wait(self, n, timeout=5):
        with self.cv:
            assert self.cv.wait_for(lambda: len(self.requests) >= n, timeout), self.requests
            return list(self.requests)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def app():
    a = App()
    yield a
    a.close()


def verify_signatures(rec, url, secret=SECRET, v2=True, v3=True):
    """HubSpot's v2 and v3 signatures (reference §3.3), recomputed here. True: present and
    valid; False: absent; None: not checked."""
    h, body = rec["headers"], rec["body"]
    if v2:
        want = hashlib.sha256((secret + "POST" + url).encode() + body).hexdigest()
        assert h["X-HubSpot-Signature-Version"] == "v2"
        assert h["X-HubSpot-Signature"] == want
    elif v2 is False:
        assert h["X-HubSpot-Signature"] is None
    if v3:
        ts = h["X-HubSpot-Request-Timestamp"]
        assert abs(int(ts) - time.time() * 1000) < 300000  # milliseconds, fresh
        mac = hmac.new(secret.encode(), ("POST" + url).encode() + body + ts.encode(),
                       hashlib.sha256).digest()
        assert h["X-HubSpot-Signature-v3"] == base64.b64encode(mac).decode()
    elif v3 is False:
        assert h["X-HubSpot-Signature-v3"] is None


# ---- helpers --------------------------------------------------------------------------------

def defs_path(rest="", family="/automation/v4/actions", key=DEV_KEY, app_id=APP_ID, query=""):
    q = "hapikey=" + key if key else ""
    if query:
        q = (q + "&" if q else "") + query
    return "%s/%d%s%s" % (family, app_id, rest, "?" + q if q else "")


def definition(action_url, options_url=None, **over):
    d = {
        "actionUrl": action_url,
        "objectTypes": ["DEAL"],
        "inputFields": [
            {"typeDefinition": {"name": "qbo_realm_id", "type": "enumeration",
                                "fieldType": "select",
                                "optionsUrl": options_url or action_url.rsplit("/", 2)[0]
                                + "/options"},
             "supportedValueTypes": ["STATIC_VALUE"], "isRequired": True},
            {"typeDefinition": {"name": "payment_terms", "type": "enumeration",
                                "fieldType": "select",
                                "options": [{"label": "Net 30", "value": "Net 30"}]},
             "supportedValueTypes": ["STATIC_VALUE"]},
            {"typeDefinition": {"name": "memo", "type": "string", "fieldType": "textarea"},
             "supportedValueTypes": ["STATIC_VALUE", "OBJECT_PROPERTY"]},
        ],
        "outputFields": [{"typeDefinition": {"name": "qbo_document_id", "type": "string",
                                             "fieldType": "text"}}],
        "objectRequestOptions": {"properties": ["dealname", "amount", "no_such_property"]},
        "labels": {"en": {"actionName": "Create a QuickBooks invoice",
                          "inputFieldLabels": {"qbo_realm_id": "QuickBooks company"}},
                   "fi": {"actionName": "Luo QuickBooks-lasku"}},
        "executionRules": [{"labelName": "missing_product",
                            "conditions": {"error_code": "PRODUCT_NOT_FOUND"}}],
    }
    d.update(over)
    return d


def create(sb, body, **kw):
    r = sb.post(defs_path(**kw), body)
    assert r.status == 201, r
    return r.json()


def enroll(sb, def_id, status=202, **kw):
    body = {"app_id": APP_ID, "definition_id": def_id, "portal_id": int(PORTAL1),
            "object": {"objectType": "DEAL", "objectId": 1001},
            "input_fields": {"qbo_realm_id": REALM, "payment_terms": "Net 30"}}
    body.update(kw)
    r = sb.post("/_sandbox/hubspot/workflows/enroll", body, timeout=20)
    assert r.status == status, r
    return r.json()


def execution(sb, cb):
    r = sb.get("/_sandbox/hubspot/callbacks/" + cb)
    assert r.status == 200, r
    return r.json()


def wait_state(sb, cb, state, timeout=5):
    deadline = time.monotonic() + timeout
    while True:
        e = execution(sb, cb)
        if e["state"] == state:
            return e
        assert time.monotonic() < deadline, e
        time.sleep(0.02)


def complete(sb, cb, state="SUCCESS", **outputs):
    outputs["hs_execution_state"] = state
    return sb.hs("POST", "/automation/v4/actions/callbacks/%s/complete" % cb,
                 {"outputFields": outputs})


def iso_ms(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp() * 1000


def fast(sb, **kw):
    settings = {"workflow_retry_base_ms": 40, "workflow_retry_max_ms": 2000}
    settings.update(kw)
    sb.config(**settings)


# ---- definitions: the API -------------------------------------------------------------------

def test_seeded_developer_app_lists_nothing_until_created_and_reset_drops(sb, app):
    r = sb.get(defs_path())
    assert r.status == 200 and r.json() == {"results": []}
    d = create(sb, definition(app.url()))
    assert sb.get(defs_path()).json()["results"][0]["id"] == d["id"]
    sb.reset()
    assert sb.get(defs_path()).json() == {"results": []}  # app restored, definitions gone
    assert sb.get(defs_path("/" + d["id"])).status == 404


def test_create_answers_the_public_definition_shape(sb, app):
    d = create(sb, definition(app.url()))
    assert re.match(r"^\d+$", d["id"]) and d["revisionId"] == "1"
    assert d["actionUrl"] == app.url() and d["published"] is False  # unpublished by default
    assert d["objectTypes"] == ["DEAL"] and d["functions"] == []
    assert "archivedAt" not in d
    f0, f1, f2 = d["inputFields"]
    assert f0["isRequired"] is True and f1["isRequired"] is False  # filled in
    assert f0["typeDefinition"]["optionsUrl"].endswith("/hubspot/options")
    assert f0["typeDefinition"]["options"] == []
    assert f1["typeDefinition"]["options"] == [{"label": "Net 30", "value": "Net 30"}]
    assert f2["supportedValueTypes"] == ["STATIC_VALUE", "OBJECT_PROPERTY"]
    assert d["outputFields"][0]["typeDefinition"]["name"] == "qbo_document_id"
    assert d["labels"]["fi"]["actionName"] == "Luo QuickBooks-lasku"
    assert d["executionRules"][0]["labelName"] == "missing_product"
    assert d["objectRequestOptions"] == {"properties": ["dealname", "amount", "no_such_property"]}
    assert sb.get(defs_path("/" + d["id"])).json() == d


def test_list_pages_with_limit_and_after(sb, app):
    ids = [create(sb, definition(app.url()))["id"] for _ in range(5)]
    seen, after, pages = [], None, 0
    while True:
        r = sb.get(defs_path(query="limit=2" + ("&after=" + after if after else "")))
        assert r.status == 200
        b = r.json()
        seen += [x["id"] for x in b["results"]]
        pages += 1
        if "paging" not in b:
            break
        after = b["paging"]["next"]["after"]
        assert "link" in b["paging"]["next"]
    assert seen == ids and pages == 3
    assert sb.get(defs_path(query="limit=abc")).status == 400
    assert sb.get(defs_path(query="after=x")).status == 400


def test_patch_merges_and_bumps_the_revision(sb, app):
    d = create(sb, definition(app.url()))
    r = sb.call("PATCH", defs_path("/" + d["id"]), {"published": True,
                                                     "actionUrl": app.url("/v2/action")})
    assert r.status == 200, r
    p = r.json()
    assert p["revisionId"] == "2" and p["published"] is True
    assert p["actionUrl"] == app.url("/v2/action")
    assert p["inputFields"] == d["inputFields"] and p["labels"] == d["labels"]  # kept
    bad = sb.call("PATCH", defs_path("/" + d["id"]), {"objectTypes": []})
    assert bad.status == 400 and bad.json()["category"] == "VALIDATION_ERROR"
    assert sb.get(defs_path("/" + d["id"])).json()["revisionId"] == "2"  # unchanged
    revs = sb.get(defs_path("/%s/revisions" % d["id"])).json()["results"]
    assert [x["revisionId"] for x in revs] == ["1", "2"]
    assert revs[0]["definition"]["actionUrl"] == app.url()
    one = sb.get(defs_path("/%s/revisions/2" % d["id"])).json()
    assert one["definition"]["published"] is True and "createdAt" in one
    assert sb.get(defs_path("/%s/revisions/3" % d["id"])).status == 404


def test_delete_archives(sb, app):
    d = create(sb, definition(app.url()))
    assert sb.call("DELETE", defs_path("/" + d["id"])).status == 204
    assert sb.get(defs_path("/" + d["id"])).status == 404
    a = sb.get(defs_path("/" + d["id"], query="archived=true")).json()
    assert a["archivedAt"] > 0
    assert sb.get(defs_path()).json()["results"] == []
    assert [x["id"] for x in sb.get(defs_path(query="archived=true")).json()["results"]] == \
        [d["id"]]
    assert sb.call("PATCH", defs_path("/" + d["id"]), {"published": True}).status == 404
    assert sb.call("DELETE", defs_path("/" + d["id"])).status == 404


def test_date_versioned_family(sb, app):
    d = create(sb, definition(app.url()), family="/automation/actions/2026-03")
    assert sb.get(defs_path("/" + d["id"])).json()["id"] == d["id"]
    got = sb.get(defs_path("/" + d["id"], family="/automation/actions/2025-09")).json()
    assert got == d


def test_developer_key_authentication(sb, app):
    body = definition(app.url())
    r = sb.post(defs_path(key=None), body)
    assert r.status == 401 and r.json()["category"] == "INVALID_AUTHENTICATION"
    r = sb.post(defs_path(key="devkey-wrong"), body)
    assert r.status == 401 and "API key provided is invalid" in r.json()["message"]
    r = sb.post(defs_path(key=None), body, token=TOKEN1)  # a bearer token: 403 (§1)
    assert r.status == 403 and r.json()["category"] == "INVALID_AUTHENTICATION"
    assert sb.get(defs_path(app_id=7654321)).status == 401  # the key is another app's
    assert sb.call("PUT", defs_path(), body).status == 405
    assert sb.call("POST", defs_path("/1"), body).status == 405
    # the key never reaches the request log
    logged = sb.requests(path="/automation/v4/actions")
    assert logged and all(DEV_KEY not in e["query"] for e in logged)
    assert any("hapikey=***" in e["query"] for e in logged)


def test_second_developer_app_by_seed(sb, app):
    other = {"app_id": 7654321, "developer_api_key": "devkey-other", "client_secret": "s2"}
    assert sb.post("/_sandbox/seed", {"hubspot": {"developer_apps": [other]}}).status == 200
    d = create(sb, definition(app.url()), app_id=7654321, key="devkey-other")
    assert sb.get(defs_path("/" + d["id"])).status == 404  # not app 1234567's
    assert sb.get(defs_path(app_id=7654321, key=DEV_KEY)).status == 401
    bad = sb.post("/_sandbox/seed", {"hubspot": {"developer_apps": [{"app_id": 1}]}})
    assert bad.status == 400 and "developer_api_key" in bad.json()["error"]


def _drop_key(d, *path):
    for k in path[:-1]:
        d = d[k]
    del d[path[-1]]


INVALID = [
    ("missing actionUrl", lambda d: _drop_key(d, "actionUrl"), "actionUrl"),
    ("relative actionUrl", lambda d: d.update(actionUrl="/hubspot/actions"), "actionUrl"),
    ("no objectTypes", lambda d: d.update(objectTypes=[]), "objectTypes"),
    ("no English label", lambda d: _drop_key(d, "labels", "en"), "labels.en.actionName"),
    ("bad type", lambda d: d["inputFields"][2]["typeDefinition"].update(type="text"), ".type"),
    ("type/fieldType pair", lambda d: d["inputFields"][2]["typeDefinition"].update(
        fieldType="select"), "does not go with type"),
    ("enumeration without options", lambda d: _drop_key(
        d, "inputFields", 0, "typeDefinition", "optionsUrl"), "needs options"),
    ("options and optionsUrl", lambda d: d["inputFields"][0]["typeDefinition"].update(
        options=[{"label": "a", "value": "a"}]), "exclude each other"),
    ("duplicate name", lambda d: d["inputFields"][2]["typeDefinition"].update(
        name="qbo_realm_id"), "duplicate field name"),
    ("option without value", lambda d: d["inputFields"][1]["typeDefinition"].update(
        options=[{"label": "a"}]), "options[0]"),
    ("bad value type", lambda d: d["inputFields"][2].update(supportedValueTypes=["X"]),
     "supportedValueTypes"),
    ("isRequired text", lambda d: d["inputFields"][2].update(isRequired="yes"), "isRequired"),
    ("no typeDefinition", lambda d: d["inputFields"].append({"isRequired": False}),
     "typeDefinition"),
    ("dependency on unknown field", lambda d: d.update(inputFieldDependencies=[
        {"dependencyType": "SINGLE_FIELD", "controllingFieldName": "nope",
         "dependentFieldNames": ["memo"]}]), "controllingFieldName"),
    ("rule without conditions", lambda d: d.update(executionRules=[{"labelName": "x"}]),
     "executionRules[0]"),
    ("function type", lambda d: d.update(functions=[{"functionType": "LATER",
                                                     "functionSource": "x"}]), "functions[0]"),
    ("request properties", lambda d: d.update(objectRequestOptions={"properties": [1]}),
     "objectRequestOptions"),
    ("published text", lambda d: d.update(published="true"), "published"),
]


@pytest.mark.parametrize("name,mutate,needle", INVALID, ids=[x[0] for x in INVALID])
def test_create_validates_like_hubspot(sb, app, name, mutate, needle):
    body = definition(app.url())
    mutate(body)
    r = sb.post(defs_path(), body)
    assert r.status == 400, (name, r)
    b = r.json()
    assert b["category"] == "VALIDATION_ERROR" and needle in b["message"], b
    assert sb.get(defs_path()).json()["results"] == []


def test_create_refuses_bad_json_and_accepts_extras(sb, app):
    assert sb.post(defs_path(), "{nope").status == 400
    assert sb.post(defs_path(), "[1]").status == 400
    body = definition(app.url(), published=True, supportedClients=[{"client": "WORKFLOWS"}],
                      inputFieldDependencies=[{"dependencyType": "CONDITIONAL_SINGLE_FIELD",
                                               "controllingFieldName": "payment_terms",
                                               "controllingFieldValue": "Net 30",
                                               "dependentFieldNames": ["memo"]}],
                      functions=[{"functionType": "PRE_FETCH_OPTIONS", "id": "qbo_realm_id",
                                  "functionSource": "exports.main = () => {}"}])
    d = create(sb, body)
    assert "supportedClients" not in d  # unknown keys are dropped
    assert d["functions"] == [{"functionType": "PRE_FETCH_OPTIONS", "id": "qbo_realm_id"}]
    assert d["inputFieldDependencies"][0]["controllingFieldValue"] == "Net 30"
