"""`hsqb-worker ingress` from HubSpot's side (issue 17): signed execution requests in, the
schema's CloudEvent in hsqb.actions out, BLOCK answered only once Kafka has it.

HubSpot is played here: requests are built and signed by the harness with Python's own
hmac/hashlib (harness.sign), the topic is read with python3-kafka and each event checked
against schemas/action-event.schema.json with jsonschema, and the worker replicas of the
session turn the events into QuickBooks documents as for any other producer.
"""
import json
import socket
import time

import jsonschema
import pytest

import harness
from harness import APP_SECRET, PORTAL1, metric_sum, parse_metrics

US1 = "4620816365014867780"

ACTION_SCHEMA = json.loads((harness.SCHEMA_DIR / "action-event.schema.json").read_text())


@pytest.fixture(scope="module")
def ingress(hsqb):
    ing = hsqb.start_ingress({"HSQB_INGRESS_CLIENT_SECRETS": "old-secret-rotating-out," +
                              APP_SECRET})
    yield ing
    ing.stop()


def block(answer):
    return answer == {"outputFields": {"hs_execution_state": "BLOCK",
                                       "hs_expiration_duration": "P1W"}}


def test_signed_request_becomes_the_schema_event_and_a_document(hsqb, ingress):
    ev = hsqb.event("create_invoice", "DEAL", 1001, US1, create_missing_products="true", payment_terms="Net 30")
    body = harness.execution_request(ev)
    st, ans = ingress.post("/hubspot/actions/create_invoice", body)
    assert st == 200 and block(ans), (st, ans)

    recs = hsqb.actions_records([ev.id])[ev.id]
    assert len(recs) == 1
    rec = recs[0]
    out = json.loads(rec.value)
    jsonschema.validate(out, ACTION_SCHEMA)
    assert rec.key == ev.key
    assert dict(rec.headers)["content-type"] == b"application/cloudevents+json"
    assert out["id"] == ev.id and out["type"] == "hsqb.action.create_invoice"
    assert out["source"] == "hsqb-ingress://127.0.0.1:%d/portal/%d/workflow/192814114" % (
        ingress.port, PORTAL1)
    # data is the request body byte for byte
    assert rec.value.decode().endswith('"data":' + body.decode() + "}")

    res = hsqb.wait_result(ev)
    assert res["data"]["status"] == "succeeded", res
    assert res["data"]["qbo"]["entity"] == "Invoice"


def test_v2_and_every_listed_secret_are_accepted(hsqb, ingress):
    evs = [hsqb.event("create_estimate", "DEAL", 1002, US1, create_missing_products="true") for _ in range(2)]
    assert block(ingress.action(evs[0], sign_as="v2")[1])
    # the old secret of a rotation still signs
    assert block(ingress.action(evs[1], secret="old-secret-rotating-out")[1])
    got = hsqb.actions_records([e.id for e in evs])
    assert sorted(got) == sorted(e.id for e in evs)


def test_hubspot_retry_of_one_execution_books_one_document(hsqb, ingress):
    ev = hsqb.event("create_sales_receipt", "DEAL", 1005, US1, create_missing_products="true")
    for _ in range(3):  # HubSpot retries carry the same callbackId
        assert block(ingress.action(ev)[1])
    assert len(hsqb.actions_records([ev.id])[ev.id]) == 3
    res = hsqb.wait_result(ev)
    assert res["data"]["status"] == "succeeded"
    time.sleep(2)
    docs = harness.docs_for_event(hsqb.sandbox.qbo(US1), ev.id)
    assert len(docs) == 1, docs


def test_refused_requests_never_reach_kafka(hsqb, ingress):
    ev = hsqb.event("create_invoice", "DEAL", 1001, US1, create_missing_products="true")
    body = harness.execution_request(ev)
    url = ingress.public_url + "/hubspot/actions/create_invoice"
    now = int(time.time() * 1000)
    before = parse_metrics(ingress.metrics_text())[0]

    def refused(expect, **kw):
        st, ans = ingress.post("/hubspot/actions/create_invoice", kw.pop("body", body), **kw)
        assert st == expect, (kw, st, ans)
        assert isinstance(ans, dict) and ans.get("message"), ans
        return ans["message"]

    assert "mismatch" in refused(401, secret="not-the-app-secret")
    assert "mismatch" in refused(401, sign_as="v2", secret="not-the-app-secret")
    # tampered: signed for one body, another sent
    sig = harness.sign("POST", url, body)
    assert "mismatch" in refused(401, sign_as=None, headers=sig,
                                 body=body.replace(b"1001", b"1002"))
    # signed for another URL (v3 covers the URI)
    assert "mismatch" in refused(401, sign_as=None,
                                 headers=harness.sign("POST", url + "?x=1", body))
    assert "stale" in refused(401, timestamp_ms=now - 6 * 60 * 1000)  # replayed after 5 min
    assert "future" in refused(401, timestamp_ms=now + 6 * 60 * 1000)
    assert "malformed" in refused(401, timestamp_ms="yesterday")
    assert refused(401, sign_as=None)
    assert "v2" in refused(401, sign_as="v1")  # v1 does not cover the URL
    # well signed, but not what the worker would take
    bad = json.loads(body)
    del bad["inputFields"]["qbo_realm_id"]
    bad = json.dumps(bad).encode()
    assert "qbo_realm_id" in refused(400, body=bad)
    assert refused(400, body=b'{"callbackId": 5}')
    assert refused(400, body=b"[1,2]")
    assert refused(400, body=b"{not json")
    # the object type an action cannot take
    contact = json.loads(body)
    contact["object"]["objectType"] = "CONTACT"
    assert refused(400, body=json.dumps(contact).encode())
    assert refused(415, content_type="text/plain")
    assert refused(413, body=b"{" + b" " * (300 * 1024) + b"}")

    st, ans = ingress.post("/hubspot/actions/create_nothing", body)
    assert st == 404, ans
    st, ans = ingress.post("/hubspot/actions", body)  # no action, no definition mapping
    assert st == 400 and "actionDefinitionId" in ans["message"], ans
    st, _ = harness.http_get(ingress.public_url + "/hubspot/actions/create_invoice")
    assert st == 405
    assert harness.http_get(ingress.public_url + "/healthz")[0] == 200

    assert ev.id not in hsqb.actions_records([ev.id])
    after = parse_metrics(ingress.metrics_text())[0]
    fails = (metric_sum(after, "hsqb_ingress_signature_failures_total") -
             metric_sum(before, "hsqb_ingress_signature_failures_total"))
    assert fails == 9
    assert (metric_sum(after, "hsqb_ingress_signature_failures_total", reason="expired") -
            metric_sum(before, "hsqb_ingress_signature_failures_total", reason="expired")) == 2
    # no body, no secret in the ingress's log
    text = ingress.log_path.read_text()
    assert "qbo_realm_id" not in text and APP_SECRET not in text


def test_actions_by_definition_id(hsqb):
    ing = hsqb.start_ingress({"HSQB_INGRESS_ACTION_DEFINITIONS": "10646377=create_estimate"})
    try:
        ev = hsqb.event("create_estimate", "DEAL", 1002, US1, create_missing_products="true")
        st, ans = ing.post("/hubspot/actions", harness.execution_request(ev))
        assert st == 200 and block(ans), ans
        out = json.loads(hsqb.actions_records([ev.id])[ev.id][0].value)
        assert out["type"] == "hsqb.action.create_estimate"
        assert hsqb.wait_result(ev)["data"]["qbo"]["entity"] == "Estimate"
    finally:
        ing.stop()


def test_bad_settings_stop_the_ingress_at_start(hsqb):
    for env, what in (({"HSQB_INGRESS_PUBLIC_URL": ""}, "ingress.public_url"),
                      ({"HSQB_INGRESS_CLIENT_SECRETS": ""}, "ingress.client_secrets"),
                      ({"HSQB_INGRESS_PUBLIC_URL": "https://h.example.com/path"}, "without a path"),
                      ({"HSQB_INGRESS_ACTION_DEFINITIONS": "12=create_nothing"},
                       "ingress.action_definitions")):
        ing = harness.Ingress(hsqb, "ingress-bad", env)
        ing.env.update(env)
        ing.start()
        ing.proc.wait(timeout=20)
        assert ing.proc.returncode == 2, (env, ing.tail())
        assert what in ing.err_path.read_text(), ing.tail()


def test_kafka_down_answers_503_then_hubspots_retry_books_once(hsqb, ingress):
    if hsqb.kafka_kind != "apache":
        pytest.fail("needs the Apache Kafka stack (run without E2E_KAFKA=mock)")
    ev = hsqb.event("create_invoice", "DEAL", 1005, US1, create_missing_products="true")
    hsqb.kafka_ctl("stop")
    try:
        t0 = time.monotonic()
        st, ans = ingress.action(ev)
        assert st == 503, ans
        assert "retry" in ans["message"]
        assert time.monotonic() - t0 < 15  # bounded by ingress.produce_timeout (3 s)
    finally:
        hsqb.kafka_ctl("start")
    deadline = time.monotonic() + 60
    while True:  # HubSpot retries 5xx with backoff
        st, ans = ingress.action(ev)
        if st == 200 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert st == 200 and block(ans), ans
    res = hsqb.wait_result(ev, timeout=60)
    assert res["data"]["status"] == "succeeded", res
    time.sleep(2)
    assert len(harness.docs_for_event(hsqb.sandbox.qbo(US1), ev.id)) == 1


def test_slow_options_never_hold_action_requests(hsqb, ingress):
    """The workflow editor's options fetches read QuickBooks; a company answering slowly
    must not take the HTTP threads action requests need (the ingress runs 2)."""
    import threading

    hsqb.sandbox.add_fault(method="GET", path="/v3/company/*/query", vendor="qbo",
                           delay_ms=2500, times=4)  # under the 3 s HTTP timeout
    body = json.dumps({"origin": {"portalId": PORTAL1, "actionDefinitionId": 10646377,
                                  "actionDefinitionVersion": 1},
                       "inputFieldName": "payment_terms",
                       "inputFields": {"qbo_realm_id": {"type": "STATIC_VALUE", "value": US1}},
                       "fetchOptions": {}}).encode()
    answers = []
    fetches = [threading.Thread(target=lambda: answers.append(
        ingress.post("/hubspot/options", body, timeout=30))) for _ in range(4)]
    for t in fetches:
        t.start()
    time.sleep(0.5)  # the four are waiting on QuickBooks now
    evs = [hsqb.event("create_invoice", "DEAL", 1005, US1) for _ in range(3)]
    for ev in evs:
        st, ans = ingress.action(ev)
        assert st == 200 and block(ans), ans
    # answered while every options fetch was still waiting for QuickBooks
    assert all(t.is_alive() for t in fetches), "options finished first: actions waited"
    for t in fetches:
        t.join(30)
    assert len(answers) == 4 and all(st == 200 for st, _ in answers), answers
    assert "Net 30" in [o["label"] for o in answers[0][1]["options"]]


def test_v3_required_refuses_v2(hsqb):
    ing = hsqb.start_ingress({"HSQB_INGRESS_REQUIRE_SIGNATURE_V3": "true"})
    try:
        ev = hsqb.event("create_invoice", "DEAL", 1005, US1)
        st, ans = ing.action(ev, sign_as="v2")
        assert st == 401 and "v3 required" in ans["message"], ans
        assert ev.id not in hsqb.actions_records([ev.id])
        st, ans = ing.action(ev)
        assert st == 200 and block(ans), ans
    finally:
        ing.stop()


def test_sigterm_answers_requests_waiting_for_kafka_and_exits_cleanly(hsqb):
    """A stop must leave no connection hanging: requests still waiting for Kafka at the end
    of the drain are answered 503 (HubSpot retries them), and the process exits 0."""
    if hsqb.kafka_kind != "apache":
        pytest.fail("needs the Apache Kafka stack (run without E2E_KAFKA=mock)")
    import threading

    ing = hsqb.start_ingress({"HSQB_INGRESS_PRODUCE_TIMEOUT": "30s",
                              "HSQB_SHUTDOWN_DRAIN_TIMEOUT": "2s"})
    answers = []
    hsqb.kafka_ctl("stop")
    try:
        evs = [hsqb.event("create_invoice", "DEAL", 1005, US1) for _ in range(3)]
        waiting = [threading.Thread(target=lambda e=e: answers.append(ing.action(e, timeout=60)))
                   for e in evs]
        for t in waiting:
            t.start()
        time.sleep(1.0)  # the three are suspended, waiting for the broker
        assert not answers
        assert ing.stop(timeout=20) == 0, ing.tail()
        for t in waiting:
            t.join(10)
        assert [st for st, _ in answers] == [503, 503, 503], answers
        assert all("shutting down" in a["message"] for _, a in answers), answers
    finally:
        hsqb.kafka_ctl("start")


def test_slow_clients_are_cut_at_the_request_deadline(hsqb):
    """Clients that open a request and trickle it a header line at a time (resetting the
    idle timeout forever) are disconnected at ingress.request_deadline, however often they
    send; meanwhile signed requests from HubSpot are answered as usual."""
    ing = hsqb.start_ingress({"HSQB_INGRESS_REQUEST_DEADLINE": "2s"})
    socks = []
    try:
        for _ in range(100):
            s = socket.create_connection(("127.0.0.1", ing.port), timeout=5)
            s.sendall(b"POST /hubspot/actions/create_invoice HTTP/1.1\r\nHost: slow\r\n")
            s.setblocking(False)
            socks.append(s)
        ev = hsqb.event("create_invoice", "DEAL", 1005, US1)
        st, ans = ing.action(ev)
        assert st == 200 and block(ans), ans
        t0, left = time.monotonic(), list(socks)
        while left and time.monotonic() - t0 < 2 + 4:  # the idle timeout is far longer
            still = []
            for s in left:
                try:
                    if s.recv(1) == b"":
                        continue  # the ingress ended it
                except BlockingIOError:
                    pass
                except OSError:
                    continue  # reset: ended too
                try:
                    s.send(b"X-Slow: 1\r\n")
                    still.append(s)
                except OSError:
                    pass
            left = still
            time.sleep(0.25)
        assert not left, "%d trickling clients outlived the 2 s deadline" % len(left)
        hsqb.wait_result(ev, timeout=60)
    finally:
        for s in socks:
            s.close()
        ing.stop()
