#!/usr/bin/python3
"""make demo: hsqb end to end in about half a minute.

Starts the dev stack (redis-server, kafka-mock, hsqb-sandbox on private ports), stores
the sandbox's QuickBooks and HubSpot credentials with `hsqb-worker credentials`, runs two
`hsqb-worker run` replicas in one consumer group and one `hsqb-worker ingress`, registers
the six workflow actions in the sandbox's HubSpot app (`hsqb-worker hubspot-actions
sync`), and enrols a small realistic stream of records in HubSpot workflows: the sandbox
plays HubSpot's workflow engine, signs each execution request and POSTs it to the
ingress, which puts it on hsqb.actions; the workers book it and complete the execution
back in HubSpot — the three sales actions on deals and quotes, the four payment actions on
HubSpot payments (sales receipt, paid invoice, processing-fee expense, refund receipt),
sales tax on an Automated Sales Tax company, a quote's discount and fees, a deal in euros
refused by USD-only books and booked (at QBO's rate) by multicurrency ones, a duplicate,
three expected failures and undecodable bytes (those straight to Kafka) — waits for
every outcome on hsqb.results and for HubSpot's side of each execution, prints them as a
table and what now exists in the QuickBooks sandbox, then stops everything it started
(also on Ctrl-C or failure). Exit status 0 only if every expected outcome happened,
checked in the results, in HubSpot's executions and in the QuickBooks books.

    make demo                                  # builds first, then runs this
    /usr/bin/python3 tests/demo/demo.py        # after make; BUILD=build by default
    /usr/bin/python3 tests/demo/demo.py --keep # leave stack and workers running to explore
    /usr/bin/python3 tests/demo/demo.py --direct  # produce to hsqb.actions, no HubSpot side

Nothing is built here. Logs stay in $BUILD/demo-logs/.
"""
import argparse
import json
import os
import pathlib
import shutil
import signal
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "integration"))

import harness  # noqa: E402
from harness import AST1, MC1, US1, cents  # noqa: E402

RESULT_TIMEOUT_S = 45
USE_COLOR = sys.stdout.isatty() and os.environ.get("NO_COLOR") is None


def color(s, code):
    return "\033[%sm%s\033[0m" % (code, s) if USE_COLOR else s


def say(msg):
    print(color("==> ", "1;34") + msg, flush=True)


# The stream: (label, action, object type, object id, inputs, expected outcome). The
# expectation is (status, entity or error code, total in cents or None). The payments are
# the seeded ones (tests/sandbox/seed/hubspot.json): 8001 succeeded, $2,053.97 in three
# line items, $59.87 of fees; 8002 partially refunded; 8003 fully refunded, $375.00.
# Accounts and the vendor are named as a user would type them in the workflow.
FEE_EXPENSE = {"expense_account": "Bank Charges", "paid_from_account": "Checking",
               "payment_type": "Check", "vendor": "HubSpot Payments"}
STREAM = [
    ("invoice, deal, Net 15", "create_invoice", "DEAL", 1005, US1,
     {"payment_terms": "Net 15"}, ("succeeded", "Invoice", 15000)),
    ("estimate, deal, new product", "create_estimate", "DEAL", 1002, US1,
     {"create_missing_products": "true"}, ("succeeded", "Estimate", 145500)),
    ("sales receipt, deal, taxed line", "create_sales_receipt", "DEAL", 1001, US1,
     {"create_missing_products": "true"}, ("succeeded", "SalesReceipt", 209022)),
    ("invoice, quote, O'Brien, NY tax", "create_invoice", "QUOTE", 2002, US1,
     {}, ("succeeded", "Invoice", 26117)),
    ("estimate, quote, e-signed", "create_estimate", "QUOTE", 2001, US1,
     {"create_missing_products": "true"}, ("succeeded", "Estimate", 205397)),
    ("sales receipt, quote", "create_sales_receipt", "QUOTE", 2002, US1,
     {}, ("succeeded", "SalesReceipt", 26117)),
    ("sales receipt, card payment", "create_sales_receipt", "COMMERCE_PAYMENT", 8001, US1,
     {"create_missing_products": "true", "deposit_to_account": "Checking"},
     ("succeeded", "SalesReceipt", 205397)),
    ("paid invoice, card payment", "create_paid_invoice", "COMMERCE_PAYMENT", 8001, US1,
     {"create_missing_products": "true"}, ("succeeded", "Invoice", 205397)),
    ("expense, payment's fees", "create_expense", "COMMERCE_PAYMENT", 8001, US1,
     FEE_EXPENSE, ("succeeded", "Purchase", 5987)),
    ("refund receipt, full refund", "create_refund_receipt", "COMMERCE_PAYMENT", 8003, US1,
     {"refund_from_account": "Checking"}, ("succeeded", "RefundReceipt", 37500)),
    ("invoice, product missing", "create_invoice", "DEAL", 1004, US1,
     {"create_missing_products": "false"}, ("failed", "PRODUCT_NOT_FOUND", None)),
    ("refund receipt, partial refund", "create_refund_receipt", "COMMERCE_PAYMENT", 8002, US1,
     {"refund_from_account": "Checking"}, ("failed", "NOT_FULLY_REFUNDED", None)),
    # Books that match HubSpot to the cent: sales tax on an Automated Sales Tax company,
    # a quote's own discount and fees, and a deal in euros on USD-only and multicurrency
    # books.
    ("invoice, deal, AST company, tax", "create_invoice", "DEAL", 1009, AST1,
     {"create_missing_products": "true"}, ("succeeded", "Invoice", 56259)),
    ("estimate, quote, 10% off + 2 fees", "create_estimate", "QUOTE", 2004, AST1,
     {"create_missing_products": "true"}, ("succeeded", "Estimate", 66385)),
    ("invoice, EUR deal, USD-only books", "create_invoice", "DEAL", 1007, US1,
     {"create_missing_products": "true"}, ("failed", "CURRENCY_NOT_SUPPORTED", None)),
    ("invoice, EUR deal, multicurrency", "create_invoice", "DEAL", 1007, MC1,
     {"create_missing_products": "true"}, ("succeeded", "Invoice", 33550)),
]
DUPLICATE_OF = 3  # index in STREAM of the execution HubSpot delivers twice
APP_ID = 1234567  # the sandbox's HubSpot developer app (tests/sandbox/seed/hubspot.json)
APP_KEY = "devkey-11111111-2222-4333-8444-555555555555"
APP_SECRET = "hsqb-app-secret-1"
GARBAGE = b"\x00\x01 this is not an event {"


class Stopped(Exception):
    pass


def on_signal(signum, frame):
    raise Stopped(signal.Signals(signum).name)


SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£"}


def money(c, currency="USD"):
    if c is None:
        return "—"
    sym = SYMBOLS.get(currency or "USD")
    amount = "%s.%02d" % ("{:,}".format(c // 100), c % 100)
    return sym + amount if sym else "%s %s" % (currency, amount)


def table(rows, headers):
    widths = [max(len(str(r[i])) for r in rows + [headers]) for i in range(len(headers))]
    line = "  ".join("%-*s" % (w, h) for w, h in zip(widths, headers))
    print(color(line, "1"))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        cells = ["%-*s" % (w, str(c)) for w, c in zip(widths, r)]
        if len(cells) > 4:
            o = str(r[4])
            cells[4] = color(cells[4], "32" if o.startswith(("succeeded", "duplicate")) else
                             "33")
            cells[-1] = color(cells[-1], "32" if r[-1] == "yes" else "1;31")
        print("  ".join(cells).rstrip())


def short(s, n):
    return s if len(s) <= n else s[:n - 1] + "…"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keep", action="store_true",
                    help="leave the stack and the workers running at the end")
    ap.add_argument("--direct", action="store_true",
                    help="produce the events straight to hsqb.actions (no ingress, no "
                         "HubSpot workflow side)")
    args = ap.parse_args()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    logdir = harness.build_dir() / "demo-logs"
    shutil.rmtree(logdir, ignore_errors=True)
    h = harness.Harness(logdir, worker_env={"HSQB_LOG_LEVEL": "info",
                                            "HSQB_KAFKA_GROUP_ID": "hsqb-demo"})
    t0 = time.monotonic()
    ok = completed = False
    try:
        ok = run(h, args)
        completed = True
    except Stopped as e:
        print("\n" + color("interrupted (%s): stopping everything" % e, "1;33"))
        return 130
    except Exception as e:  # setup problems: say what and where to look
        print("\n" + color("demo failed: %s" % e, "1;31"))
        print("logs: %s" % logdir)
        return 2
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if not (args.keep and completed):
            say("stopping the workers and the stack")
            statuses = h.stop()
            bad = {k: v for k, v in statuses.items() if v != 0}
            if bad:
                print(color("workers exited uncleanly: %r" % bad, "1;31"))
    elapsed = time.monotonic() - t0
    if ok:
        print(color("demo OK: every expected outcome happened (%.0f s)" % elapsed, "1;32"))
        return 0
    print(color("demo FAILED: some expected outcomes did not happen (%.0f s); logs in %s" % (
        elapsed, logdir), "1;31"))
    return 1


def run(h, args):
    say("starting the dev stack (redis-server, %s, hsqb-sandbox)" % (
        "Apache Kafka" if h.kafka_kind == "apache" else "kafka-mock"))
    h.start_stack()
    env = h.env
    say("storing credentials for QuickBooks realms and HubSpot portals in Redis, each realm "
        "bound to the portal whose workflows use it (hsqb-worker credentials qbo --portal)")
    h.store_credentials()
    say("starting 2 hsqb-worker replicas in consumer group hsqb-demo")
    h.start_replicas(2)
    before = {r: h.sandbox.qbo(r) for r in REALMS}
    ingress = None if args.direct else start_hubspot_side(h)

    events = []
    for label, action, kind, oid, realm, inputs, expect in STREAM:
        events.append((label, h.event(action, kind, oid, realm, **inputs), expect))
    dup_label, dup_ev, dup_expect = events[DUPLICATE_OF]
    n_failing = sum(1 for _, _, (st, _, _) in events if st == "failed")
    counts = (sum(1 for e in STREAM if e[2] != "COMMERCE_PAYMENT" and e[6][0] == "succeeded"),
              sum(1 for e in STREAM if e[2] == "COMMERCE_PAYMENT" and e[6][0] == "succeeded"),
              n_failing)
    if ingress:
        say("enrolling %d records in HubSpot workflows (%d sales, %d payment, %d expected to "
            "fail): the sandbox signs each execution request and POSTs it to the ingress"
            % ((len(events),) + counts))
        events = [(label, enroll(h, ev), expect) for label, ev, expect in events]
        dup_ev = events[DUPLICATE_OF][1]
        say("HubSpot delivers #%d a second time (a retry after a lost answer)" % (
            DUPLICATE_OF + 1))
        redeliver(h, ingress, dup_ev)
        locate(h, [ev for _, ev, _ in events])
        say("one invalid message straight to hsqb.actions (no ingress would pass it)")
    else:
        say("publishing %d events to hsqb.actions (%d sales, %d payment, one duplicate, %d "
            "expected to fail, one invalid)" % ((len(events) + 2,) + counts))
        h.produce(*[ev for _, ev, _ in events])
        h.produce(dup_ev)
    garbage = h.produce_raw(GARBAGE, key=b"not-a-key",
                            headers=[("content-type", b"application/cloudevents+json")])

    say("waiting for the results on hsqb.results")
    ids = [ev.id for _, ev, _ in events] + [garbage.coords]
    try:
        h.wait_results(ids, timeout=RESULT_TIMEOUT_S)
        h.wait_results([dup_ev.id], timeout=10, count=2)
    except AssertionError as e:
        print(color(str(e).splitlines()[0], "1;31"))
    got = h.results_for(ids)
    # Failed events are dead-lettered after their result; give the DLQ a moment.
    failed_evs = [ev for _, ev, (st, _, _) in events if st == "failed"]
    try:
        h.wait_dlq([garbage.coords] + [ev.coords for ev in failed_evs], timeout=10)
    except AssertionError:
        pass  # reported below, entry by entry
    after = {r: h.sandbox.qbo(r) for r in REALMS}

    execs = wait_executions(h, [ev for _, ev, _ in events]) if ingress else {}
    rows, failures, notes = [], [], []

    def add(label, ev, res, problem, duplicate=False):
        n = len(rows) + 1
        ex = execs.get(ev.id) if ev.id else None
        hs = "-" if not ingress or not ev.id else (ex or {}).get("state", "no record")
        if duplicate and ex:
            hs = "same execution"
        rows.append(row(n, label, ev, res, duplicate) + [hs, "yes" if not problem else "NO"])
        if problem:
            failures.append("#%d %s: %s" % (n, label, problem))
        if res and res["data"]["status"] == "failed":
            e = res["data"]["error"]
            notes.append("#%d %s: %s" % (n, e["code"], e["message"]))

    for label, ev, (st_want, what_want, total_want) in events:
        recs = got.get(ev.id) or []
        res = recs[0].json if recs else None
        d = res["data"] if res else None
        problem = None
        if d is None:
            problem = "no result"
        elif d["status"] != st_want:
            problem = "%s, expected %s" % (d["status"], st_want)
            if d["status"] == "failed":
                problem += " (%s)" % d["error"]["code"]
        elif st_want == "succeeded" and (d["qbo"]["entity"], d["qbo"]["total_cents"]) != (
                what_want, total_want):
            problem = "%s %s, expected %s %s" % (d["qbo"]["entity"], money(
                d["qbo"]["total_cents"], d["qbo"]["currency"]), what_want, money(total_want))
        elif st_want == "failed" and d["error"]["code"] != what_want:
            problem = "%s, expected %s" % (d["error"]["code"], what_want)
        if problem is None:
            problem = book_problem(ev, d, after[ev.doc["data"]["inputFields"]["qbo_realm_id"]])
        if problem is None and ingress:
            problem = hubspot_problem(execs.get(ev.id), d)
        add(label, ev, res, problem)
    dup = h.results_for([dup_ev.id])[dup_ev.id]
    problem = None
    if len(dup) < 2:
        problem = "the stored result was not re-published"
    elif dup[1].json["data"].get("qbo") != dup[0].json["data"].get("qbo"):
        problem = "a different result the second time"
    add("again: #%d" % (DUPLICATE_OF + 1), dup_ev, dup[1].json if len(dup) > 1 else None,
        problem, duplicate=True)
    gr = got.get(garbage.coords) or []
    res = gr[0].json if gr else None
    add("invalid bytes", garbage, res, None if res and res["data"]["error"]["code"] ==
        "INVALID_EVENT" else "no INVALID_EVENT result")
    original = {garbage.coords: GARBAGE}
    original.update({ev.coords: ev.value for ev in failed_evs})
    dead = h.dlq_for(list(original))
    for k, recs in dead.items():
        if not recs:
            failures.append("no dead letter for %s on hsqb.actions.dlq" % k)
        elif recs[0].value != original[k]:
            failures.append("dead letter %s does not keep the original bytes" % k)

    print()
    table(rows, ["#", "event", "action", "object", "outcome", "QuickBooks document",
                 "doc no.", "total", "time ms", "HubSpot", "as expected"])
    for n in notes:
        print("  " + short(n, 150))
    print("  dead letters on hsqb.actions.dlq (original bytes + failure headers): %d" % sum(
        len(v) for v in dead.values()))
    print()
    for realm in REALMS:
        show_qbo(realm, before[realm], after[realm])
    if h.collector.invalid:
        failures.append("%d results do not match schemas/result-event.schema.json" % len(
            h.collector.invalid))

    print()
    say("where to look next")
    print("  worker logs (JSON lines):  %s/worker-*.log" % h.logdir)
    print("  stack logs (after stop):   %s/{sandbox,%s,redis}.log" % (
        h.logdir, "kafka-1" if h.kafka_kind == "apache" else "kafka-mock"))
    print("  results topic:             kcat -b %s -C -t hsqb.results -o beginning -e" %
          env["KAFKA_BOOTSTRAP"])
    print("  dead letters with headers: kcat -b %s -C -t hsqb.actions.dlq -o beginning -e "
          "-f '%%h\\n%%s\\n\\n'" % env["KAFKA_BOOTSTRAP"])
    print("  QuickBooks sandbox state:  curl -s '%s/_sandbox/state?realm=%s'  (also %s, %s)" % (
        env["SANDBOX_URL"], US1, AST1, MC1))
    print("  worker metrics:            curl -s %s" % h.replicas[0].url("/metrics"))
    if ingress:
        print("  ingress log and metrics:   %s; curl -s %s" % (ingress.log_path,
                                                          ingress.url("/metrics")))
        print("  HubSpot's executions:      curl -s '%s/_sandbox/hubspot/executions?portal=%d'"
              % (env["SANDBOX_URL"], harness.PORTAL1))
    if args.keep:
        print(color("  --keep: still running. Stop with: kill %s; tests/stack/stack down %s" % (
            " ".join(str(r.pid) for r in h.replicas + h.ingresses), h.stack_dir), "1;33"))
    else:
        print("  (these addresses live while the stack runs: `--keep` leaves it up)")
    print()
    if failures:
        for f in failures:
            print(color("  MISSING: " + f, "1;31"))
        return False
    return True


# ---- HubSpot's side: the app's actions, enrolments, executions ----------------------------

def start_hubspot_side(h):
    """The ingress, and the six action definitions registered in the sandbox's app."""
    say("starting hsqb-worker ingress (HubSpot's actionUrl, signatures checked with the "
        "app's client secret)")
    ingress = h.start_ingress({"HSQB_INGRESS_CLIENT_SECRETS": APP_SECRET})
    say("registering the six workflow actions in HubSpot app %d (hsqb-worker "
        "hubspot-actions sync)" % APP_ID)
    r = h.cli(["hubspot-actions", "sync", "--app-id", str(APP_ID)],
              env={"HSQB_HUBSPOT_DEVELOPER_KEY": APP_KEY,
                   "HSQB_INGRESS_PUBLIC_URL": ingress.public_url})
    if r.returncode != 0:
        raise RuntimeError("hubspot-actions sync failed:\n%s%s" % (r.stdout, r.stderr))
    h.defs = {}
    for line in r.stdout.splitlines():
        print("    " + line)
        parts = line.split()
        if len(parts) >= 4 and parts[1:3] == ["created", "id"]:
            h.defs[parts[0].rstrip(":")] = parts[3]
    return ingress


def enroll(h, ev):
    """Enrol ev's record in the workflow of ev's action; the event's id becomes the
    execution's callbackId (HubSpot assigns it)."""
    data = ev.doc["data"]
    action = ev.doc["type"].rsplit(".", 1)[1]
    ans = h.sandbox._call("POST", "/_sandbox/hubspot/workflows/enroll", {
        "app_id": APP_ID, "definition_id": h.defs[action], "portal_id": harness.PORTAL1,
        "object": data["object"], "input_fields": data["inputFields"]})
    cb = ans["callbackId"]
    doc = dict(ev.doc, id=cb, data=ans["request"])
    return harness.Event(cb, ev.key, None, doc)


def redeliver(h, ingress, ev):
    """HubSpot's request for ev once more, signed as HubSpot signs it."""
    harness.wait_until(lambda: h.sandbox._call("GET", "/_sandbox/hubspot/callbacks/" + ev.id)
                       ["deliveries"], 20, what="the first delivery of " + ev.id)
    action = ev.doc["type"].rsplit(".", 1)[1]
    st, ans = ingress.post("/hubspot/actions/" + action,
                           json.dumps(ev.doc["data"]).encode(), secret=APP_SECRET)
    if st != 200:
        raise RuntimeError("the ingress refused HubSpot's second delivery: %s %s" % (st, ans))


def locate(h, evs):
    """Where the ingress put each event on hsqb.actions (the DLQ names it so)."""
    want = {ev.id: ev for ev in evs}
    harness.wait_until(lambda: len(h.actions_records(list(want))) == len(want), 30,
                       what="every execution on hsqb.actions")
    for eid, recs in h.actions_records(list(want)).items():
        r = recs[0]
        want[eid].partition, want[eid].offset, want[eid].timestamp_ms = (
            r.partition, r.offset, r.timestamp)
        want[eid].value = r.value


def wait_executions(h, evs, timeout=30):
    """{callbackId: the sandbox's execution record} once each is completed (or timeout)."""
    out = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for ev in evs:
            if ev.id not in out or out[ev.id]["state"] in ("DELIVERING", "BLOCKED"):
                out[ev.id] = h.sandbox._call("GET", "/_sandbox/hubspot/callbacks/" + ev.id)
        if all(r["state"] not in ("DELIVERING", "BLOCKED") for r in out.values()):
            break
        time.sleep(0.3)
    return out


def hubspot_problem(ex, d):
    """What is wrong with HubSpot's side of a booked execution, or None."""
    if not ex:
        return "HubSpot has no record of the execution"
    want = "SUCCESS" if d["status"] == "succeeded" else "FAIL_CONTINUE"
    if ex["state"] != want:
        return "HubSpot shows %s, expected %s" % (ex["state"], want)
    out = ex.get("outputFields") or {}
    if d["status"] == "succeeded" and out.get("qbo_document_id") != d["qbo"]["id"]:
        return "HubSpot's qbo_document_id %r is not %s" % (out.get("qbo_document_id"),
                                                             d["qbo"]["id"])
    if d["status"] == "failed" and out.get("error_code") != d["error"]["code"]:
        return "HubSpot's error_code %r is not %s" % (out.get("error_code"), d["error"]["code"])
    if ex.get("completions") != 1:
        return "completed %s times" % ex.get("completions")
    return None


# What each successful action must leave in the books, besides its one document: the
# QuickBooks kinds whose PrivateNote names the event (exactly once, whatever duplicates
# and retries did).
REALMS = (US1, AST1, MC1)
REALM_NAMES = {US1: "US, sales tax by hand", AST1: "US, Automated Sales Tax",
               MC1: "US, multicurrency: home USD, EUR and GBP customers"}
DOCS_OF = {"create_invoice": ["Invoice"], "create_estimate": ["Estimate"],
           "create_sales_receipt": ["SalesReceipt"], "create_paid_invoice": ["Invoice", "Payment"],
           "create_expense": ["Purchase"], "create_refund_receipt": ["RefundReceipt"]}


def by_id(state, kind, id_):
    for e in state.get(kind, []):
        if e["Id"] == id_:
            return e
    return None


def account_id(state, name):
    for a in state.get("Account", []):
        if a["Name"] == name:
            return a["Id"]
    return None


def book_problem(ev, d, after):
    """What is wrong in the QuickBooks books after event ev with result data d (None: as
    expected): the right documents exist once, and the payment actions' particulars."""
    action = ev.doc["type"].split(".")[-1]
    docs = harness.docs_for_event(after, ev.id)
    kinds = sorted(k for k, _ in docs)
    want = sorted(DOCS_OF[action]) if d["status"] == "succeeded" else []
    if kinds != want:
        return "QuickBooks holds %s for this event, expected %s" % (
            ", ".join(kinds) or "nothing", ", ".join(want) or "nothing")
    if d["status"] != "succeeded":
        return None
    q = d["qbo"]
    doc = by_id(after, q["entity"], q["id"])
    if doc is None or cents(doc["TotalAmt"]) != q["total_cents"]:
        return "%s #%s is not in QuickBooks with the total of the result" % (q["entity"], q["id"])
    if q["currency"] != "USD" and (doc.get("CurrencyRef") or {}).get("value") != q["currency"]:
        return "%s #%s is not in %s" % (q["entity"], q["id"], q["currency"])
    inputs = ev.doc["data"]["inputFields"]
    if action == "create_paid_invoice":
        pay = by_id(after, "Payment", q.get("payment_id") or "")
        if pay is None:
            return "no Payment #%s in QuickBooks" % q.get("payment_id")
        if cents(doc["Balance"]) != 0:
            return "the invoice is open: Balance %s" % money(cents(doc["Balance"]))
        if cents(pay["TotalAmt"]) != q["total_cents"]:
            return "the payment is %s" % money(cents(pay["TotalAmt"]))
        if not any(lt.get("TxnType") == "Payment" and lt.get("TxnId") == pay["Id"]
                   for lt in doc.get("LinkedTxn") or []):
            return "Payment #%s is not linked to Invoice #%s" % (pay["Id"], doc["Id"])
    elif action == "create_expense":
        ent = doc.get("EntityRef") or {}
        vendor = by_id(after, "Vendor", ent.get("value", "")) if ent.get(
            "type", "Vendor") == "Vendor" else None
        if vendor is None or vendor["DisplayName"] != inputs["vendor"]:
            return "the payee is not the vendor %s" % inputs["vendor"]
        same = [v for v in after["Vendor"] if v["DisplayName"].lower() == inputs["vendor"].lower()]
        if len(same) != 1:
            return "%d vendors named %s" % (len(same), inputs["vendor"])
        lines = [l for l in doc.get("Line", [])
                 if l.get("DetailType") == "AccountBasedExpenseLineDetail"]
        if doc.get("PaymentType") != inputs["payment_type"] or doc["AccountRef"][
                "value"] != account_id(after, inputs["paid_from_account"]) or not lines or any(
                l["AccountBasedExpenseLineDetail"]["AccountRef"]["value"] != account_id(
                    after, inputs["expense_account"]) for l in lines):
            return "not a %s from %s on %s" % (inputs["payment_type"],
                                               inputs["paid_from_account"],
                                               inputs["expense_account"])
    elif action in ("create_sales_receipt", "create_refund_receipt"):
        acct = inputs.get("deposit_to_account") or inputs.get("refund_from_account")
        if acct and (doc.get("DepositToAccountRef") or {}).get("value") != account_id(after,
                                                                                       acct):
            return "not %s %s" % ("refunded from" if "refund" in action else "deposited to",
                                  acct)
    return None


def row(n, label, ev, res, duplicate=False):
    """One table row. Colour is added last so that column widths stay right."""
    ident = ev.id or ev.coords
    obj = "%s %s" % (ev.doc["data"]["object"]["objectType"],
                     ev.doc["data"]["object"]["objectId"]) if ev.doc else "(raw bytes)"
    action = ev.doc["type"].split(".")[-1] if ev.doc else "-"
    head = [n, "%s (%s)" % (label, "…" + ident[-10:] if ev.id else ident), action, obj]
    if res is None:
        return head + ["NO RESULT", "", "", "", ""]
    d = res["data"]
    if d["status"] == "succeeded":
        q = d["qbo"]
        doc = "%s #%s" % (q["entity"], q["id"])
        if q.get("payment_id"):
            doc += " + Payment #%s" % q["payment_id"]
        return head + ["duplicate: same" if duplicate else "succeeded", doc,
                       q.get("doc_number") or "-", money(q["total_cents"], q.get("currency")),
                       d["duration_ms"]]
    return head + ["failed", d["error"]["code"], "", "", d["duration_ms"]]


KINDS = ("Customer", "Vendor", "Item", "Invoice", "Estimate", "SalesReceipt", "Payment",
         "Purchase", "RefundReceipt")


def ref_name(state, kind, ref):
    """The name a reference shows: its own name, else the entity's."""
    ref = ref or {}
    if ref.get("name"):
        return ref["name"]
    e = by_id(state, kind, ref.get("value", ""))
    return (e or {}).get("DisplayName") or (e or {}).get("Name") or ref.get("value", "")


def tax_and_currency(d):
    """ ", tax $1.23" and " EUR at 1.08 ($270.00)" for a sales document, when it has them."""
    cur = (d.get("CurrencyRef") or {}).get("value") or "USD"
    out = ""
    tax = (d.get("TxnTaxDetail") or {}).get("TotalTax")
    if tax:
        out += ", tax %s" % money(cents(tax), cur)
    disc = sum(cents(l["Amount"]) for l in d.get("Line", [])
               if l.get("DetailType") == "DiscountLineDetail")
    if disc:
        out += ", discount %s" % money(disc, cur)
    if cur != "USD":
        out += ", %s at %s (%s)" % (cur, d.get("ExchangeRate"), money(cents(
            d.get("HomeTotalAmt", d["TotalAmt"]))))
    return out


def show_qbo(realm, before, after):
    say("what now exists in the QuickBooks sandbox (realm %s, %s)" % (realm, REALM_NAMES[realm]))
    seen = {k: {e["Id"] for e in before.get(k, [])} for k in KINDS}
    new = {k: [e for e in after.get(k, []) if e["Id"] not in seen[k]] for k in KINDS}
    for c in new["Customer"]:
        cur = (c.get("CurrencyRef") or {}).get("value", "USD")
        print("  Customer      %-4s %-40s %s%s" % (
            c["Id"], c["DisplayName"], (c.get("PrimaryEmailAddr") or {}).get("Address", ""),
            "" if cur == "USD" else "  (%s)" % cur))
    for v in new["Vendor"]:
        print("  Vendor        %-4s %s" % (v["Id"], v["DisplayName"]))
    for i in new["Item"]:
        print("  Item          %-4s %s (%s)" % (i["Id"], i["Name"], i.get("Type")))
    for k in ("Invoice", "Estimate", "SalesReceipt", "RefundReceipt"):
        for d in new[k]:
            if k == "Invoice":
                extra = "  due %s, balance %s" % (d.get("DueDate", "-"), money(cents(
                    d.get("Balance", d["TotalAmt"])), (d.get("CurrencyRef") or {}).get("value")))
            elif d.get("DepositToAccountRef"):
                extra = "  %s %s" % ("from" if k == "RefundReceipt" else "to", ref_name(
                    after, "Account", d["DepositToAccountRef"]))
            else:
                extra = ""
            n = len(harness.sales_lines(d))
            print("  %-13s #%-4s no. %-6s %-34s %12s  %d line%s  %s%s%s" % (
                k, d["Id"], d.get("DocNumber", ""),
                short(ref_name(after, "Customer", d.get("CustomerRef")), 34),
                money(cents(d["TotalAmt"]), (d.get("CurrencyRef") or {}).get("value")), n,
                "" if n == 1 else "s", d["TxnDate"], extra, tax_and_currency(d)))
    for p in new["Payment"]:
        inv = ["Invoice #%s" % lt["TxnId"] for l in p.get("Line", [])
               for lt in l.get("LinkedTxn", []) if lt.get("TxnType") == "Invoice"]
        print("  %-13s #%-4s %-44s %12s  %s  pays %s" % (
            "Payment", p["Id"], short(ref_name(after, "Customer", p.get("CustomerRef")), 44),
            money(cents(p["TotalAmt"])), p["TxnDate"], ", ".join(inv) or "nothing"))
    for p in new["Purchase"]:
        lines = [ref_name(after, "Account", l["AccountBasedExpenseLineDetail"]["AccountRef"])
                 for l in p.get("Line", []) if l.get("DetailType") ==
                 "AccountBasedExpenseLineDetail"]
        print("  %-13s #%-4s %-44s %12s  %s  %s from %s, on %s" % (
            "Purchase", p["Id"], short(ref_name(after, "Vendor", p.get("EntityRef")), 44),
            money(cents(p["TotalAmt"])), p["TxnDate"], p.get("PaymentType", "?"),
            ref_name(after, "Account", p.get("AccountRef")), ", ".join(lines)))
    if not any(new.values()):
        print("  (nothing new)")


if __name__ == "__main__":
    sys.exit(main())
