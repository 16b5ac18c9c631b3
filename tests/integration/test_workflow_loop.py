"""The whole loop of issue 17, HubSpot's side played by the sandbox's workflow engine:
action definitions registered with `hsqb-worker hubspot-actions sync` -> a workflow
enrols a record (POST /_sandbox/hubspot/workflows/enroll) -> the sandbox signs and POSTs
the execution request to the definition's actionUrl, retrying as HubSpot does ->
`hsqb-worker ingress` -> hsqb.actions -> the session's worker replicas -> QuickBooks ->
hsqb.results -> the replicas' callback completer -> the execution completed in HubSpot,
with the document's id, number, total and link as output fields.

Checked from the outside: the sandbox's record of each execution (deliveries, state,
output fields, completions), the QuickBooks books, and hsqb.actions read with
python3-kafka.
"""
import json
import re
import signal
import subprocess
import time

import pytest

import harness
from harness import PORTAL1, US1, wait_until

APP_ID = 1234567
DEV_KEY = "devkey-11111111-2222-4333-8444-555555555555"
APP_SECRET = "hsqb-app-secret-1"  # the sandbox's developer app (tests/sandbox/seed)

FEES = {"expense_account": "Bank Charges", "paid_from_account": "Checking",
        "payment_type": "Check", "vendor": "HubSpot Payments"}
# (action, object type, object id, inputs, QBO entity, total in cents): the demo's stream
SIX = [
    ("create_invoice", "DEAL", 1005, {"payment_terms": "Net 15"}, "Invoice", 15000),
    ("create_estimate", "DEAL", 1002, {"create_missing_products": "true"}, "Estimate", 145500),
    ("create_sales_receipt", "QUOTE", 2002, {}, "SalesReceipt", 26117),
    ("create_paid_invoice", "COMMERCE_PAYMENT", 8001, {"create_missing_products": "true"},
     "Invoice", 205397),
    ("create_expense", "COMMERCE_PAYMENT", 8001, FEES, "Purchase", 5987),
    ("create_refund_receipt", "COMMERCE_PAYMENT", 8003, {"refund_from_account": "Checking"},
     "RefundReceipt", 37500),
]
PAGES = {"Invoice": "invoice", "Estimate": "estimate", "SalesReceipt": "salesreceipt",
         "Purchase": "expense", "RefundReceipt": "refundreceipt"}


@pytest.fixture(scope="module")
def ingress(hsqb):
    ing = hsqb.start_ingress({"HSQB_INGRESS_CLIENT_SECRETS": APP_SECRET})
    yield ing
    ing.stop()


@pytest.fixture
def defs(hsqb, ingress):
    """The six definitions, registered afresh after the test's sandbox reset, the engine's
    retries shortened (HubSpot's span days); {action: definition id}."""
    hsqb.sandbox.config({"workflow_retry_base_ms": 100, "workflow_retry_max_ms": 1000,
                         "workflow_retry_attempts": 60, "workflow_timeout_ms": 10000})
    env = {"HSQB_HUBSPOT_DEVELOPER_KEY": DEV_KEY, "HSQB_INGRESS_PUBLIC_URL": ingress.public_url}
    r = subprocess.run([str(harness.worker_binary()), "hubspot-actions", "sync", "--app-id",
                        str(APP_ID)], env=hsqb.worker_env(env), capture_output=True, text=True,
                       timeout=60, cwd=str(harness.ROOT))
    assert r.returncode == 0, r.stdout + r.stderr
    assert DEV_KEY not in r.stdout + r.stderr
    out = {}
    for line in r.stdout.splitlines():
        m = re.match(r"(create_\w+): created id (\d+)", line)
        if m:
            out[m.group(1)] = m.group(2)
    assert sorted(out) == sorted(a[0] for a in SIX), r.stdout
    return out


def enroll(hsqb, defs, action, otype, oid, inputs, realm=US1, wait=False):
    body = {"app_id": APP_ID, "definition_id": defs[action], "portal_id": PORTAL1,
            "object": {"objectType": otype, "objectId": oid},
            "input_fields": dict({"qbo_realm_id": realm}, **inputs), "wait": wait}
    return hsqb.sandbox._call("POST", "/_sandbox/hubspot/workflows/enroll", body)


def execution(hsqb, cb):
    return hsqb.sandbox._call("GET", "/_sandbox/hubspot/callbacks/" + cb)


def wait_final(hsqb, cbs, timeout=90, delivered=False):
    """{callbackId: execution record} once every one is SUCCESS/FAIL_CONTINUE/FAILED, and,
    with delivered, once HubSpot has stopped delivering it too: an execution completes by
    its callback as soon as the worker is done, while a delivery whose answer was lost
    (the ingress killed after the event reached Kafka) is still waiting for its retry."""
    final = ("SUCCESS", "FAIL_CONTINUE", "FAILED")
    got = {}

    def done():
        for cb in cbs:
            if cb not in got:
                rec = execution(hsqb, cb)
                if rec["state"] in final and not (
                        delivered and rec["delivery_state"] == "DELIVERING"):
                    got[cb] = rec
        return len(got) == len(cbs)
    wait_until(done, timeout, interval=0.3, what="executions completed (%d of %d)" % (
        len(got), len(cbs)))
    return got


def test_all_six_actions_complete_in_hubspot(hsqb, defs):
    cbs = [enroll(hsqb, defs, a, t, o, i)["callbackId"] for a, t, o, i, _, _ in SIX]
    fail_cb = enroll(hsqb, defs, "create_invoice", "DEAL", 1004,
                     {"create_missing_products": "false"})["callbackId"]
    recs = wait_final(hsqb, cbs + [fail_cb])
    books = hsqb.sandbox.qbo(US1)
    for cb, (action, _, _, _, entity, total) in zip(cbs, SIX):
        rec = recs[cb]
        assert rec["state"] == "SUCCESS", (action, rec)
        assert [d["status"] for d in rec["deliveries"]] == [200]
        assert rec["completions"] == 1
        out = rec["outputFields"]
        assert out["status"] == "succeeded"
        assert out["qbo_total"] == "%d.%02d" % divmod(total, 100), (action, out)
        assert out["qbo_document_url"] == "https://app.qbo.intuit.com/app/%s?txnId=%s" % (
            PAGES[entity], out["qbo_document_id"])
        docs = harness.docs_for_event(books, cb)
        assert [d for k, d in docs if k == entity and d["Id"] == out["qbo_document_id"]], (
            action, out, docs)
    rec = recs[fail_cb]
    assert rec["state"] == "FAIL_CONTINUE", rec
    assert rec["outputFields"]["error_code"] == "PRODUCT_NOT_FOUND"
    assert rec["outputFields"]["status"] == "failed"
    assert rec["outputFields"]["error_message"]


def test_options_for_the_workflow_editor(hsqb, defs, ingress):
    body = {"app_id": APP_ID, "definition_id": defs["create_invoice"], "portal_id": PORTAL1,
            "input_field_name": "payment_terms", "input_fields": {"qbo_realm_id": US1}}
    ans = hsqb.sandbox._call("POST", "/_sandbox/hubspot/workflows/options", body)
    assert ans["status"] == 200 and ans["valid"], ans
    labels = [o["label"] for o in ans["response"]["options"]]
    assert "Net 30" in labels
    ans = hsqb.sandbox._call("POST", "/_sandbox/hubspot/workflows/options",
                             dict(body, input_field_name="qbo_realm_id", input_fields={}))
    assert ans["status"] == 200 and US1 in [o["value"] for o in ans["response"]["options"]]


def test_ingress_sigkilled_under_load_loses_nothing_and_books_once(hsqb, defs, ingress):
    n = 120
    same = {k: ingress.env[k] for k in ("HSQB_INGRESS_LISTEN", "HSQB_INGRESS_PUBLIC_URL",
                                        "HSQB_INGRESS_CLIENT_SECRETS")}
    cbs = []
    for i in range(n):
        cbs.append(enroll(hsqb, defs, "create_estimate", "DEAL", 1005, {})["callbackId"])
        if i == n // 3:
            ingress.kill()  # mid-stream: requests in flight die with it
            time.sleep(0.5)
            new = harness.Ingress(hsqb, ingress.name + "-again", same)
            new.start()  # the same port: HubSpot's retries reach it
            new.wait_ready(30)
            ingress.proc, ingress.log_path, ingress.err_path, ingress.metrics_port = (
                new.proc, new.log_path, new.err_path, new.metrics_port)
    recs = wait_final(hsqb, cbs, timeout=180, delivered=True)
    answered = [cb for cb in cbs
                if any(d["status"] == 200 for d in recs[cb]["deliveries"])]
    assert len(answered) == n
    in_kafka = hsqb.actions_records(cbs)
    books = hsqb.sandbox.qbo(US1)
    for cb in cbs:
        rec = recs[cb]
        assert cb in in_kafka, rec  # every execution answered 200 is in Kafka
        assert rec["state"] == "SUCCESS", rec
        assert rec["completions"] == 1, rec  # completed once (a repeat is refused, counted)
        assert len(harness.docs_for_event(books, cb)) == 1, cb
    retried = [cb for cb in cbs if len(recs[cb]["deliveries"]) > 1]
    print("executions retried by HubSpot after the kill: %d of %d; duplicate events in "
          "Kafka: %d" % (len(retried), n, sum(len(v) - 1 for v in in_kafka.values())))
