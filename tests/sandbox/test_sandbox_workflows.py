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
    r = enroll(sb, d["id"], status=404)  # an archived definition no longer enrols
    assert "no live definition" in r["error"]


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


# ---- enrolment: the execution request ------------------------------------------------------

def test_enrol_sends_the_signed_execution_request(sb, app):
    d = create(sb, definition(app.url()))
    e = enroll(sb, d["id"], input_fields={"qbo_realm_id": REALM, "memo": "Thanks", "payment_terms":
                                          "Net 30"}, workflow_id=555, action_id=7)
    cb, req = e["callbackId"], e["request"]
    m = CB_RE.match(cb)
    assert m and m.group(2) == "7"
    rec = app.wait(1)[0]
    assert rec["path"] == "/hubspot/actions/create_invoice"
    assert rec["headers"]["Content-Type"] == "application/json"
    verify_signatures(rec, app.url())
    sent = json.loads(rec["body"])
    assert sent == req
    assert rec["body"] == json.dumps(req, separators=(",", ":")).encode()  # compact, as signed
    enrollment = int(m.group(1))
    index = {"enrollmentId": enrollment, "actionExecutionIndex": 0}
    assert sent["callbackId"] == cb
    assert sent["origin"] == {"portalId": 102670506, "actionDefinitionId": int(d["id"]),
                              "actionDefinitionVersion": 1,
                              "extensionDefinitionId": int(d["id"]),
                              "extensionDefinitionVersionId": 1,
                              "actionExecutionIndexIdentifier": index}
    assert sent["context"] == {"source": "WORKFLOWS", "workflowId": 555, "actionId": 7,
                               "actionExecutionIndexIdentifier": index}
    deal = sb.hs("GET", "/crm/v3/objects/deals/1001?properties=dealname,amount").json()
    assert sent["object"] == {"objectId": 1001, "objectType": "DEAL",
                              "properties": {"dealname": deal["properties"]["dealname"],
                                             "amount": "2053.97"}}
    assert sent["inputFields"] == {"qbo_realm_id": REALM, "memo": "Thanks",
                                   "payment_terms": "Net 30"}
    assert sent["fields"] == sent["inputFields"]
    x = wait_state(sb, cb, "BLOCKED")
    assert x["portalId"] == 102670506 and x["appId"] == APP_ID and x["definitionId"] == d["id"]
    assert x["request"] == req and x["completions"] == 0 and x["refused_completions"] == 0
    assert [(y["attempt"], y["status"], y["error"]) for y in x["deliveries"]] == [(1, 200, None)]
    assert x["response"] == {"status": 200, "body": BLOCK}
    week = 7 * 86400 * 1000
    assert abs(iso_ms(x["expiresAt"]) - time.time() * 1000 - week) < 60000


def test_enrol_defaults_quote_type_id_and_missing_record(sb, app):
    d = create(sb, definition(app.url(), objectTypes=["QUOTE", "0-3"]))
    e = enroll(sb, d["id"], object={"objectType": "0-14", "objectId": "2002"})
    assert e["request"]["object"]["objectType"] == "QUOTE"  # the name HubSpot sends (§9 #6)
    assert e["request"]["context"]["workflowId"] == 192814114
    assert e["request"]["object"]["properties"] == {}  # quotes have no dealname/amount
    e = enroll(sb, d["id"], object={"objectType": "DEAL", "objectId": 999999})
    assert e["request"]["object"]["properties"] == {}  # not in the portal: no properties
    nd = definition(app.url())
    del nd["objectRequestOptions"]
    e = enroll(sb, create(sb, nd)["id"])
    assert "properties" not in e["request"]["object"]
    a, b = CB_RE.match(enroll(sb, d["id"], object={"objectType": "DEAL", "objectId": 1002})[
        "callbackId"]), CB_RE.match(e["callbackId"])
    assert int(a.group(1)) > int(b.group(1))  # fresh enrollment ids


@pytest.mark.parametrize("mode,v2,v3", [("v2", True, False), ("v3", False, True),
                                        ("none", False, False)])
def test_enrol_signature_modes(sb, app, mode, v2, v3):
    d = create(sb, definition(app.url()))
    enroll(sb, d["id"], sign=mode)
    verify_signatures(app.wait(1)[0], app.url(), v2=v2, v3=v3)


def test_enrol_signs_the_url_exactly_with_the_secret_given(sb, app):
    url = app.url("/hubspot/actions?portal=1&x=a%2Fb")
    d = create(sb, definition(url, options_url=app.url("/hubspot/options")))
    enroll(sb, d["id"])
    rec = app.wait(1)[0]
    assert rec["path"] == "/hubspot/actions?portal=1&x=a%2Fb"
    verify_signatures(rec, url, v3=None)  # v2 signs the URL byte for byte
    ts = rec["headers"]["X-HubSpot-Request-Timestamp"]
    mac = hmac.new(SECRET.encode(), ("POST" + url.replace("%2F", "/")).encode() + rec["body"] +
                   ts.encode(), hashlib.sha256).digest()  # v3 decodes %2F (§3.3)
    assert rec["headers"]["X-HubSpot-Signature-v3"] == base64.b64encode(mac).decode()
    enroll(sb, d["id"], client_secret="a-rotated-secret")
    verify_signatures(app.wait(2)[1], url, secret="a-rotated-secret", v3=None)


def test_enrol_refuses_what_the_editor_would_not_save(sb, app):
    d = create(sb, definition(app.url()))
    r = enroll(sb, d["id"], status=400, input_fields={"payment_terms": "Net 30"})
    assert "'qbo_realm_id' is required" in r["error"]
    r = enroll(sb, d["id"], status=400, input_fields={"qbo_realm_id": REALM, "nope": "1"})
    assert "'nope' is not defined" in r["error"]
    r = enroll(sb, d["id"], status=400, input_fields={"qbo_realm_id": {"x": 1}})
    assert "must be a string" in r["error"]
    e = enroll(sb, d["id"], validate=False, input_fields={"nope": 12, "flag": True})
    assert e["request"]["inputFields"] == {"nope": "12", "flag": "true"}  # strings (§3.2)
    assert "not take objectType" in enroll(sb, d["id"], status=400, object={
        "objectType": "CONTACT", "objectId": 301})["error"]
    assert enroll(sb, d["id"], status=400, object={"objectType": "DEAL"})
    assert "unknown key 'colour'" in enroll(sb, d["id"], status=400, colour="red")["error"]
    assert enroll(sb, d["id"], status=400, sign="v4")
    assert enroll(sb, d["id"], status=400, wait="yes")
    assert enroll(sb, d["id"], status=404, app_id=999)
    assert enroll(sb, "999", status=404)
    assert "no portal" in enroll(sb, d["id"], status=404, portal_id=1)["error"]
    enroll(sb, d["id"], enrollment_id=42)
    assert "exists already" in enroll(sb, d["id"], status=409, enrollment_id=42)["error"]
    assert sb.post("/_sandbox/hubspot/workflows/enroll", "nope").status == 400
    assert sb.get("/_sandbox/hubspot/workflows/enroll").status == 404
    assert sb.get("/_sandbox/hubspot/callbacks/ap-unknown").status == 404


# ---- delivery outcomes and HubSpot's retry policy -------------------------------------------

def test_5xx_is_retried_with_exponential_backoff(sb, app):
    fast(sb, workflow_retry_base_ms=100)
    app.script = [{"status": 503, "body": {"message": "Kafka did not acknowledge"}},
                  {"status": 500, "body": ""}]
    d = create(sb, definition(app.url()))
    x = enroll(sb, d["id"], wait=True, status=200)  # answers after the final outcome
    assert x["state"] == "BLOCKED"
    assert [y["status"] for y in x["deliveries"]] == [503, 500, 200]
    recs = app.wait(3)
    assert recs[1]["t"] - recs[0]["t"] >= 0.09 and recs[2]["t"] - recs[1]["t"] >= 0.19
    for r in recs:
        verify_signatures(r, app.url())
        assert json.loads(r["body"])["callbackId"] == x["callbackId"]  # same execution
    assert len({r["headers"]["X-HubSpot-Request-Timestamp"] for r in recs}) == 3  # re-signed
    assert x["response"]["status"] == 200


def test_429_honours_retry_after_in_milliseconds(sb, app):
    fast(sb, workflow_retry_base_ms=5)
    app.script = [{"status": 429, "headers": {"Retry-After": "400"}, "body": {}}]
    app.default = {"status": 200, "body": {"outputFields": {"hs_execution_state": "SUCCESS",
                                                            "qbo_document_id": "130"}}}
    d = create(sb, definition(app.url()))
    x = enroll(sb, d["id"], wait=True, status=200)
    assert x["state"] == "SUCCESS" and x["outputFields"]["qbo_document_id"] == "130"
    recs = app.wait(2)
    assert recs[1]["t"] - recs[0]["t"] >= 0.38
    r = complete(sb, x["callbackId"])  # finished synchronously: nothing to complete
    assert r.status == 400
    assert execution(sb, x["callbackId"])["refused_completions"] == 1
    dumped = {c["callbackId"]: c for c in
              sb.state(portal=PORTAL1)["hubspot"]["portals"][PORTAL1]["callbacks"]}
    assert dumped[x["callbackId"]]["state"] == "CLOSED"


def test_timeout_is_retried(sb, app):
    fast(sb, workflow_timeout_ms=300)
    app.script = [{"status": 200, "body": BLOCK, "delay": 1.0}]
    d = create(sb, definition(app.url()))
    x = enroll(sb, d["id"], wait=True, status=200)
    assert x["state"] == "BLOCKED"
    first, second = x["deliveries"]
    assert first["status"] == 0 and "timeout" in first["error"]
    assert 250 <= first["duration_ms"] < 900
    assert second["status"] == 200


def test_retries_exhausted_fail_the_execution(sb, app):
    fast(sb, workflow_retry_base_ms=10, workflow_retry_attempts=2)
    app.default = {"status": 502, "body": "bad gateway", "type": "text/plain"}
    d = create(sb, definition(app.url()))
    x = enroll(sb, d["id"], wait=True, status=200)
    assert x["state"] == "FAILED" and x["delivery_state"] == "FAILED"
    assert [y["status"] for y in x["deliveries"]] == [502, 502, 502]
    assert x["error"] == "gave up after 3 deliveries: HTTP 502"
    assert x["response"] == {"status": 502, "body": "bad gateway"}
    # nobody listening: connection errors count the same way
    gone = App()
    gone.close()
    d = create(sb, definition(gone.url()))
    x = enroll(sb, d["id"], wait=True, status=200)
    assert x["state"] == "FAILED" and len(x["deliveries"]) == 3
    assert all(y["status"] == 0 and y["error"].startswith("connect") for y in x["deliveries"])
    assert x["response"] is None


def test_4xx_fails_at_once_and_keeps_the_body(sb, app):
    fast(sb)
    app.default = {"status": 400, "body": {"message": "qbo_realm_id is not connected"}}
    d = create(sb, definition(app.url()))
    x = enroll(sb, d["id"], wait=True, status=200)
    assert x["state"] == "FAILED" and len(x["deliveries"]) == 1
    assert x["error"] == "HTTP 400 from the actionUrl"
    assert x["response"]["body"] == {"message": "qbo_realm_id is not connected"}
    r = complete(sb, x["callbackId"])
    assert r.status == 400 and "already been completed" in r.json()["message"]
    x = execution(sb, x["callbackId"])
    assert x["completions"] == 0 and x["refused_completions"] == 1


@pytest.mark.parametrize("answer,state,error", [
    ({"outputFields": {"hs_execution_state": "FAIL_CONTINUE", "error_code": "X"}},
     "FAIL_CONTINUE", None),
    ({"outputFields": {"qbo_document_id": "1"}}, "SUCCESS", None),
    ("not json at all", "SUCCESS", None),
    ({"outputFields": {"hs_execution_state": "ASYNC"}}, "BLOCKED", None),
    ({"outputFields": {"hs_execution_state": "MAYBE"}}, "FAILED", "unknown hs_execution_state"),
    ({"outputFields": {"hs_execution_state": "BLOCK", "hs_expiration_duration": "1 week"}},
     "FAILED", "not an ISO-8601 duration"),
    ({"outputFields": "BLOCK"}, "FAILED", "outputFields must be an object"),
])
def test_synchronous_answers(sb, app, answer, state, error):
    app.default = {"status": 200, "body": answer}
    d = create(sb, definition(app.url()))
    x = enroll(sb, d["id"], wait=True, status=200)
    assert x["state"] == state, x
    if error:
        assert error in x["error"]
    else:
        assert "error" not in x


@pytest.mark.parametrize("duration,ms", [("P1W", 7 * 86400000), ("PT1H", 3600000),
                                         ("P1WT1H", 7 * 86400000 + 3600000),
                                         ("P2DT30M", 2 * 86400000 + 1800000)])
def test_block_expiry_from_iso8601(sb, app, duration, ms):
    app.default = {"status": 200, "body": {"outputFields": {
        "hs_execution_state": "BLOCK", "hs_expiration_duration": duration}}}
    d = create(sb, definition(app.url()))
    x = enroll(sb, d["id"], wait=True, status=200)
    assert abs(iso_ms(x["expiresAt"]) - time.time() * 1000 - ms) < 60000


def test_blocked_execution_expires(sb, app):
    app.default = {"status": 200, "body": {"outputFields": {
        "hs_execution_state": "BLOCK", "hs_expiration_duration": "PT1S"}}}
    d = create(sb, definition(app.url()))
    x = enroll(sb, d["id"], wait=True, status=200)
    assert x["state"] == "BLOCKED"
    x = wait_state(sb, x["callbackId"], "EXPIRED", timeout=3)
    assert x["delivery_state"] == "BLOCKED"
    r = complete(sb, x["callbackId"])
    assert r.status == 400 and "expired" in r.json()["message"]
    assert execution(sb, x["callbackId"])["refused_completions"] == 1
    assert [e["callbackId"] for e in sb.get("/_sandbox/hubspot/executions?state=EXPIRED")
            .json()["executions"]] == [x["callbackId"]]


# ---- completion ----------------------------------------------------------------------------

def test_single_completion_is_recorded_and_counted(sb, app):
    d = create(sb, definition(app.url()))
    x = enroll(sb, d["id"], wait=True, status=200)
    cb = x["callbackId"]
    r = complete(sb, cb, qbo_document_id="130", qbo_doc_number="1037", status="succeeded")
    assert r.status == 204
    x = execution(sb, cb)
    assert x["state"] == "SUCCESS" and x["delivery_state"] == "BLOCKED"
    assert x["outputFields"] == {"qbo_document_id": "130", "qbo_doc_number": "1037",
                                 "status": "succeeded", "hs_execution_state": "SUCCESS"}
    assert x["completions"] == 1 and x["completedVia"] == "single" and "completedAt" in x
    again = complete(sb, cb, "FAIL_CONTINUE")
    assert again.status == 400  # today's behaviour: a second completion is refused
    x = execution(sb, cb)
    assert x["completions"] == 1 and x["refused_completions"] == 1 and x["state"] == "SUCCESS"
    # the completion is also in the callback dump
    dumped = {c["callbackId"]: c for c in
              sb.state(portal=PORTAL1)["hubspot"]["portals"][PORTAL1]["callbacks"]}
    assert dumped[cb]["state"] == "COMPLETED"


def test_batch_completion(sb, app):
    d = create(sb, definition(app.url()))
    a = enroll(sb, d["id"], wait=True, status=200)["callbackId"]
    b = enroll(sb, d["id"], wait=True, status=200, object={"objectType": "DEAL",
                                                           "objectId": 1002})["callbackId"]
    r = sb.hs("POST", "/automation/v4/actions/callbacks/complete", {"inputs": [
        {"callbackId": a, "outputFields": {"hs_execution_state": "SUCCESS"}},
        {"callbackId": b, "outputFields": {"hs_execution_state": "FAIL_CONTINUE",
                                           "error_code": "PRODUCT_NOT_FOUND"}}]})
    assert r.status == 204
    xa, xb = execution(sb, a), execution(sb, b)
    assert (xa["state"], xa["completedVia"]) == ("SUCCESS", "batch")
    assert (xb["state"], xb["outputFields"]["error_code"]) == ("FAIL_CONTINUE",
                                                              "PRODUCT_NOT_FOUND")
    ex = sb.get("/_sandbox/hubspot/executions").json()
    assert ex["total"] == 2 and all(e["completions"] == 1 for e in ex["executions"])
    assert all("request" not in e for e in ex["executions"])


def test_completion_before_the_synchronous_answer(sb, app):
    """The worker may complete a callback before the ingress's BLOCK reaches HubSpot."""
    def hook(rec):
        cb = json.loads(rec["body"])["callbackId"]
        assert complete(sb, cb, qbo_document_id="9").status == 204
    app.hook = hook
    d = create(sb, definition(app.url()))
    x = enroll(sb, d["id"], wait=True, status=200)
    assert x["state"] == "SUCCESS" and x["delivery_state"] == "BLOCKED"
    assert x["completions"] == 1 and x["outputFields"]["qbo_document_id"] == "9"


def test_executions_filter_by_portal_state_and_definition(sb, app):
    fast(sb, workflow_retry_attempts=0)
    d1 = create(sb, definition(app.url()))
    d2 = create(sb, definition(app.url()))
    app.script = [{"status": 404, "body": {}}]
    failed = enroll(sb, d1["id"], wait=True, status=200)["callbackId"]
    blocked = enroll(sb, d1["id"], wait=True, status=200)["callbackId"]
    other = enroll(sb, d2["id"], wait=True, status=200, portal_id=int(PORTAL2),
                   object={"objectType": "DEAL", "objectId": 1})["callbackId"]
    assert other.startswith("ap-%s-" % PORTAL2)

    def ids(q):
        r = sb.get("/_sandbox/hubspot/executions" + q)
        assert r.status == 200, r
        return [e["callbackId"] for e in r.json()["executions"]]
    assert ids("") == [failed, blocked, other]
    assert ids("?state=FAILED") == [failed]
    assert ids("?state=BLOCKED&portal=" + PORTAL1) == [blocked]
    assert ids("?definition=" + d2["id"]) == [other]
    assert ids("?app=%d&limit=1" % APP_ID) == [failed]
    assert sb.get("/_sandbox/hubspot/executions?portal=x").status == 400


def test_reset_drops_executions(sb, app):
    d = create(sb, definition(app.url()))
    cb = enroll(sb, d["id"], wait=True, status=200)["callbackId"]
    sb.reset()
    assert sb.get("/_sandbox/hubspot/callbacks/" + cb).status == 404
    assert sb.get("/_sandbox/hubspot/executions").json() == {"executions": [], "total": 0}


def test_reset_while_a_delivery_waits_answers_the_waiting_enrolment(sb, app):
    fast(sb)
    app.default = {"status": 503, "body": {}}
    d = create(sb, definition(app.url()))
    out = {}

    def run():
        out["r"] = sb.post("/_sandbox/hubspot/workflows/enroll", {
            "app_id": APP_ID, "definition_id": d["id"], "portal_id": int(PORTAL1),
            "object": {"objectType": "DEAL", "objectId": 1001},
            "input_fields": {"qbo_realm_id": REALM}, "wait": True})
    t = threading.Thread(target=run)
    t.start()
    app.wait(2)
    sb.reset()
    t.join(5)
    assert out["r"].status == 409 and "dropped by a reset" in out["r"].json()["error"]


def test_seeded_callback_has_a_record_too(sb):
    x = execution(sb, "ap-102670506-56776413549-7-0")
    assert x["state"] == "BLOCKED" and x["deliveries"] == [] and x["request"] is None
    assert complete(sb, "ap-102670506-56776413549-7-0").status == 204
    x = execution(sb, "ap-102670506-56776413549-7-0")
    assert x["state"] == "SUCCESS" and x["completions"] == 1


# ---- options like the workflow editor ------------------------------------------------------

OPTIONS = {"options": [{"label": "Net 30", "value": "Net 30", "description": "30 days"},
                       {"label": "Due on receipt", "value": "Due on receipt"}],
           "after": "2", "searchable": True}


def options(sb, def_id, status=200, **kw):
    body = {"app_id": APP_ID, "definition_id": def_id, "portal_id": int(PORTAL1),
            "input_field_name": "qbo_realm_id"}
    body.update(kw)
    r = sb.post("/_sandbox/hubspot/workflows/options", body, timeout=20)
    assert r.status == status, r
    return r.json()


def test_options_round_trip(sb, app):
    app.default = {"status": 200, "body": OPTIONS}
    d = create(sb, definition(app.url(), options_url=app.url("/hubspot/options")))
    o = options(sb, d["id"], input_fields={"payment_terms": "Net 30"}, q="net", after="50")
    assert o["valid"] is True and o["problems"] == [] and o["status"] == 200
    assert o["response"] == OPTIONS
    rec = app.wait(1)[0]
    assert rec["path"] == "/hubspot/options"
    verify_signatures(rec, app.url("/hubspot/options"))
    sent = json.loads(rec["body"])
    assert sent == o["request"]
    assert sent == {"origin": {"portalId": 102670506, "actionDefinitionId": int(d["id"]),
                               "actionDefinitionVersion": 1},
                    "objectTypeId": "0-3", "inputFieldName": "qbo_realm_id",
                    "inputFields": {"payment_terms": {"type": "STATIC_VALUE",
                                                      "value": "Net 30"}},
                    "fetchOptions": {"q": "net", "after": "50"}}
    o = options(sb, d["id"], typed=False, input_fields={"payment_terms": "Net 30"},
                object_type="QUOTE")
    sent = json.loads(app.wait(2)[1]["body"])
    assert sent["inputFields"] == {"payment_terms": "Net 30"} and "fetchOptions" not in sent
    assert sent["objectTypeId"] == "0-14"


@pytest.mark.parametrize("answer,needle", [
    ({"options": [{"label": "A", "value": 1}]}, "options[0].value must be a string"),
    ({"options": [{"value": "a"}]}, "options[0].label"),
    ({"options": [{"label": "A", "value": "a"}, {"label": "B", "value": "a"}]}, "repeats"),
    ({"options": [], "after": 100}, "after must be a string"),
    ({"options": [], "searchable": "yes"}, "searchable must be a boolean"),
    ({"choices": []}, "options must be an array"),
    ("<html>", "not a JSON object"),
])
def test_options_answer_problems(sb, app, answer, needle):
    app.default = {"status": 200, "body": answer}
    d = create(sb, definition(app.url()))
    o = options(sb, d["id"])
    assert o["valid"] is False and any(needle in p for p in o["problems"]), o


def test_options_errors(sb, app):
    # a timeout with room for a loaded machine (300 ms was hit by a prompt 500 under load)
    fast(sb, workflow_timeout_ms=1500)
    d = create(sb, definition(app.url()))
    app.script = [{"status": 500, "body": {"message": "boom"}}]
    o = options(sb, d["id"])
    assert o["status"] == 500 and o["valid"] is False and "HTTP 500, expected 200" in o["problems"]
    app.script = [{"status": 200, "body": OPTIONS, "delay": 4.0}]
    o = options(sb, d["id"])
    assert o["status"] == 0 and "timeout" in o["error"] and o["response"] is None
    assert len(app.requests) == 2  # no retries for the editor
    assert "with an optionsUrl" in options(sb, d["id"], status=404,
                                           input_field_name="payment_terms")["error"]
    assert options(sb, d["id"], status=400, input_field_name=None)
    assert options(sb, d["id"], status=400, q=5)
    assert options(sb, d["id"], status=404, definition_id="1")


# ---- lifecycle ------------------------------------------------------------------------------

def test_sigterm_does_not_wait_for_a_hung_action_url(app):
    """Delivery threads stop within about a second, even with a 30 s timeout running."""
    s = Sandbox()
    try:
        app.default = {"status": 200, "body": BLOCK, "delay": 20}
        d = create(s, definition(app.url()))
        enroll(s, d["id"])
        app.wait(1)
        t0 = time.monotonic()
        rc = s.stop()
        assert rc == 0 and time.monotonic() - t0 < 3
    finally:
        s.stop()


def test_workflow_settings_are_validated(sb):
    r = sb.post("/_sandbox/config", {"workflow_retry_attempts": -1})
    assert r.status == 400
    c = sb.get("/_sandbox/config").json()
    assert (c["workflow_retry_base_ms"], c["workflow_retry_max_ms"], c["workflow_retry_attempts"],
            c["workflow_timeout_ms"], c["workflow_threads"]) == (1000, 600000, 10, 30000, 4)
    assert sb.config(workflow_threads=8)["workflow_threads"] == 8
