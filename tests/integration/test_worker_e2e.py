"""hsqb-worker end to end: Kafka in, QuickBooks (sandbox) and Kafka out (issue 4).

Every check is made from the outside: events are produced with python3-kafka, results
and dead letters are read back with it and validated against the schemas, what exists in
"QuickBooks" is read from the sandbox's state dump, what reached the APIs from its
request log, the dedup markers from Redis, health from /metrics.

    make && /usr/bin/python3 -m pytest -q tests/integration      # BUILD=build by default

Fixtures in conftest.py: two replicas in one consumer group, sandbox reset before every
test. Seeded facts (tests/sandbox/seed): portal 102670506; QBO realms US1/US2 (US) and
CA1 (Canada); QBO items 2 "Hours" (no SKU), 3 "Consulting hour" (CONS-HR), 4 "Widget"
(WID-001); QBO customers 3 "Ada Lovelace" and 6 "Grace Hopper" named like HubSpot
contacts 301 and 306 but with other emails; terms 1 "Due on receipt", 2 "Net 15",
3 "Net 30". Objects a test needs beyond the seed are seeded by the test (ids 19xxx,
29xxx, 3xxxx, line items 79xxx and up).
"""
import datetime
import json
import re
import time
import zlib
import zoneinfo
from decimal import Decimal

import pytest

import harness
from harness import (CA1, GROUP, PORTAL1, PORTAL2, US1, US2, cents, docs_for_event,
                     metric_sum, parse_metrics, sales_lines)

CONTACTS = {  # tests/sandbox/seed/hubspot.json
    "301": ("Ada", "Lovelace", "ada@example.com"),
    "302": ("Seán", "O'Brien", "sean.obrien@example.ie"),
    "303": ("Zoë", "Ångström-Müller", "zoe@example.se"),
    "304": ("Łukasz 🚀", "Nowak 🎉", "lukasz@example.pl"),
    "306": ("Grace", "Hopper", "grace.h@navy.example"),
    "401": ("Émilie", "Dubois", "emilie@example.fr"),
}
ITEM_HOURS, ITEM_CONSULTING, ITEM_WIDGET = "2", "3", "4"
ENTITY = {"create_invoice": "Invoice", "create_estimate": "Estimate",
          "create_sales_receipt": "SalesReceipt"}
DOC_KINDS = ("Invoice", "Estimate", "SalesReceipt")
NUM = re.compile(r"^(0|[1-9][0-9]*)$")
_next_li = [80000]


# ---- seeding -------------------------------------------------------------------------------

def line(name, quantity, price, amount, sku=None, item=None, **props):
    """A HubSpot line item spec; `item` is the QBO item it must map to (not seeded)."""
    _next_li[0] += 1
    p = {"name": name, "quantity": quantity, "price": price, "amount": amount,
         "hs_line_item_currency_code": "USD"}
    if sku:
        p["hs_sku"] = sku
    p.update(props)
    return {"id": str(_next_li[0]), "properties": p, "item": item}


def consulting(qty="1", amount="150.00"):
    return line("Consulting hour", qty, "150.00", amount, sku="CONS-HR", item=ITEM_CONSULTING)


def seed_object(h, kind, oid, contacts, lines, portal=PORTAL1):
    """Seed a deal or quote (kind "deals"/"quotes") with its contacts and line items."""
    objects = {
        "line_items": [{"id": l["id"], "properties": l["properties"]} for l in lines],
        kind: [{"id": str(oid),
                "properties": ({"dealname": "e2e %s" % oid, "pipeline": "default",
                                "dealstage": "closedwon"} if kind == "deals" else
                               {"hs_title": "e2e %s" % oid, "hs_status": "APPROVED",
                                "hs_currency": "USD"}),
                "associations": {"contacts": [str(c) for c in contacts],
                                 "line_items": [l["id"] for l in lines]}}],
    }
    h.sandbox.seed_hubspot(portal, **objects)
    return lines


# The money edge cases: fractional quantities, a per-unit and a percentage discount, a
# line matched by name (no SKU), six-figure amounts. Every amount is HubSpot's own.
def money_lines():
    return [
        line("Consulting hour", "0.25", "150.00", "37.50", sku="CONS-HR", item=ITEM_CONSULTING),
        line("Widget", "7", "19.99", "139.86", sku="WID-001", item=ITEM_WIDGET,
             discount="0.01", hs_total_discount="0.07"),
        line("Widget", "3", "25.00", "60.00", sku="WID-001", item=ITEM_WIDGET,
             hs_discount_percentage="20", hs_total_discount="15.00"),
        line("Hours", "1.125", "80.00", "90.00", item=ITEM_HOURS),
        line("Consulting hour", "2", "123456.78", "246913.56", sku="CONS-HR",
             item=ITEM_CONSULTING),
    ]


# ---- checks --------------------------------------------------------------------------------

def counts(st):
    return {k: len(st[k]) for k in ("Customer", "Item") + DOC_KINDS}


def qbo_writes(h, since, realm=None):
    """QBO requests after `since` that could change something (POSTs other than queries)."""
    q = {"vendor": "qbo", "method": "POST"}
    if realm:
        q["tenant"] = realm
    return [r for r in h.sandbox.requests(since=since, **q) if not r["path"].endswith("/query")]


def check_success(res, ev, action, obj_type, obj_id, realm, portal=PORTAL1):
    d = res["data"]
    assert res["type"] == "hsqb.result.succeeded", json.dumps(res)[:2000]
    assert d["status"] == "succeeded"
    assert res["id"] == ev.id + ":result"
    assert res["subject"] == ev.key.decode()
    assert d["action"] == action and d["input_id"] == ev.id and d["portal_id"] == portal
    assert d["object"] == {"type": obj_type, "id": int(obj_id)}
    assert d["realm_id"] == realm
    assert d["qbo"]["entity"] == ENTITY.get(action, d["qbo"]["entity"])
    assert d["qbo"]["currency"] == "USD"
    assert d["source"]["topic"] == harness.TOPIC_ACTIONS
    assert d["attempts"] >= 1
    return d["qbo"]


def check_failure(res, ev, code, realm=None):
    d = res["data"]
    assert res["type"] == "hsqb.result.failed", json.dumps(res)[:2000]
    assert d["status"] == "failed" and "qbo" not in d
    assert d["error"]["code"] == code, json.dumps(d["error"])
    assert d["error"]["message"] and "\n" not in d["error"]["message"]
    if code not in ("RETRIES_EXHAUSTED", "INTERNAL"):
        assert d["error"]["retryable"] is False
    if code != "INVALID_EVENT":
        assert res["id"] == ev.id + ":result"
        assert res["subject"] == ev.key.decode()
        assert d["input_id"] == ev.id
    if realm:
        assert d.get("realm_id") in (None, realm)
    return d["error"]


def check_dlq(h, ev, code, result_error=None, event_id=True):
    """The dead letter of ev: original key and value bytes, and the design §3.3 headers."""
    recs = h.wait_dlq([ev.coords])[ev.coords]
    assert len(recs) == 1, "%d DLQ records for %s" % (len(recs), ev.coords)
    r = recs[0]
    assert r.value == ev.value, "DLQ value differs from the original bytes"
    assert r.key == ev.key
    hd = r.header
    assert hd("hsqb-original-topic") == harness.TOPIC_ACTIONS
    assert hd("hsqb-original-partition") == str(ev.partition)
    assert hd("hsqb-original-offset") == str(ev.offset)
    assert hd("hsqb-original-timestamp") == str(ev.timestamp_ms)
    assert hd("hsqb-error-code") == code
    msg = hd("hsqb-error-message")
    assert msg and "\n" not in msg and len(msg.encode()) <= 1024
    if result_error:
        full = result_error["message"]
        assert msg == full or (len(full.encode()) > 1000 and full.startswith(msg[:200])), (
            msg, full)
    now = int(time.time() * 1000)
    for name in ("hsqb-attempts", "hsqb-first-failure", "hsqb-last-failure"):
        assert hd(name) and NUM.match(hd(name)), (name, hd(name))
    assert int(hd("hsqb-attempts")) >= 1
    first, last = int(hd("hsqb-first-failure")), int(hd("hsqb-last-failure"))
    assert ev.timestamp_ms - 1000 <= first <= last <= now + 1000, (first, last)
    assert hd("hsqb-consumer-group") == GROUP
    if event_id is True:
        assert hd("hsqb-event-id") == ev.id
    elif event_id is False:  # undecodable: no id to name
        assert hd("hsqb-event-id") is None
    return r


def check_document(h, realm, ev, qbo, entity, lines=None, st=None):
    """The one document of ev in QBO, matching the result, with HubSpot's money."""
    st = st or h.sandbox.qbo(realm)
    docs = docs_for_event(st, ev.id)
    assert len(docs) == 1, "%d documents for event %s: %r" % (
        len(docs), ev.id, [(k, d["Id"]) for k, d in docs])
    kind, doc = docs[0]
    assert kind == entity == qbo["entity"]
    assert doc["Id"] == qbo["id"]
    assert (doc.get("DocNumber") or None) == (qbo.get("doc_number") or None)
    assert cents(doc["TotalAmt"]) == qbo["total_cents"]
    assert doc["CustomerRef"]["value"] == qbo["customer_id"]
    if lines is not None:
        check_lines(doc, lines)
    return doc


def check_lines(doc, lines):
    """Each HubSpot line item is one SalesItemLine whose Amount is its amount to the cent
    (Qty x UnitPrice == Amount), on the expected item; the total is their sum."""
    got = sales_lines(doc)
    assert len(got) == len(lines), "lines: %r" % got
    assert not [l for l in doc["Line"] if l.get("DetailType") == "DiscountLineDetail"], (
        "a discount line makes line amounts differ from HubSpot's")
    left = list(got)
    for li in lines:
        p = li["properties"]
        want = cents(p["amount"])
        cand = [g for g in left if cents(g["Amount"]) == want and (
            li["item"] is None or g["SalesItemLineDetail"]["ItemRef"]["value"] == li["item"])]
        assert cand, "no QBO line for HubSpot line item %s (%s, amount %s, item %s) in %r" % (
            li["id"], p["name"], p["amount"], li["item"], got)
        g = cand[0]
        left.remove(g)
        det = g["SalesItemLineDetail"]
        qty, price = Decimal(repr(det["Qty"])), Decimal(repr(det["UnitPrice"]))
        assert cents(str(qty * price)) == want, (qty, price, want)
        assert qty == Decimal(p["quantity"]) or (qty == 1 and cents(det["UnitPrice"]) == want)
    total = sum(cents(l["properties"]["amount"]) for l in lines)
    assert cents(doc["TotalAmt"]) == total
    return total


def txn_date_of(ev):
    """The event's day in its portal's time zone (the seed's account details), as the
    worker dates documents: the company's calendar, not the UTC day."""
    zones = {p["portalId"]: p.get("timeZone", "US/Eastern") for p in json.loads(
        (harness.SEED_DIR / "hubspot.json").read_text())["hubspot"]["portals"]}
    t = datetime.datetime.fromisoformat(ev.doc["time"].replace("Z", "+00:00"))
    zone = zoneinfo.ZoneInfo(zones[ev.doc["data"]["origin"]["portalId"]])
    return t.astimezone(zone).date().isoformat()


def run_one(h, ev, timeout=45):
    h.produce(ev)
    return h.wait_result(ev, timeout)


def customer(st, cid):
    return next(c for c in st["Customer"] if c["Id"] == cid)


# ---- the three actions, from a deal and from a quote, with exact money -----------------------

@pytest.mark.parametrize("action", ["create_invoice", "create_estimate", "create_sales_receipt"])
@pytest.mark.parametrize("kind", ["DEAL", "QUOTE"])
def test_action_creates_document_with_hubspot_money(hsqb, action, kind):
    h = hsqb
    oid = 19001 if kind == "DEAL" else 29001
    lines = seed_object(h, "deals" if kind == "DEAL" else "quotes", oid, ["303"], money_lines())
    before = counts(h.sandbox.qbo(US1))
    ev = h.event(action, kind, oid, US1)
    res = run_one(h, ev)
    qbo = check_success(res, ev, action, kind, oid, US1)
    assert qbo["total_cents"] == 24724092
    assert res["data"]["source"]["partition"] == ev.partition
    assert res["data"]["source"]["offset"] == ev.offset
    st = h.sandbox.qbo(US1)
    doc = check_document(h, US1, ev, qbo, ENTITY[action], lines, st)
    assert doc["TxnDate"] == txn_date_of(ev)
    assert doc["CurrencyRef"]["value"] == "USD"
    # Exactly this document and its customer are new; every line matched an existing item.
    after = counts(st)
    assert after["Item"] == before["Item"] and qbo["created_items"] == []
    assert after["Customer"] == before["Customer"] + 1 and qbo["created_customer"] is True
    for k in DOC_KINDS:
        assert after[k] == before[k] + (1 if k == ENTITY[action] else 0), k
    first, last, email = CONTACTS["303"]
    c = customer(st, qbo["customer_id"])
    assert (c["GivenName"], c["FamilyName"]) == (first, last)
    assert c["PrimaryEmailAddr"]["Address"].lower() == email


def test_fractional_quantity_and_percentage_discount_with_created_item(hsqb):
    """Seeded deal 1002: 2.5 consulting hours (375.00) and an annual subscription at 10 %
    off (1,080.00) whose product QBO does not have: created on request."""
    h = hsqb
    ev = h.event("create_invoice", "DEAL", 1002, US1, create_missing_products="true")
    res = run_one(h, ev)
    qbo = check_success(res, ev, "create_invoice", "DEAL", 1002, US1)
    assert qbo["total_cents"] == 145500
    st = h.sandbox.qbo(US1)
    created = {i["name"]: i["id"] for i in qbo["created_items"]}
    assert list(created) == ["Annual subscription"]
    item = next(i for i in st["Item"] if i["Id"] == created["Annual subscription"])
    assert item["Name"] == "Annual subscription"
    lines = [{"id": "7004", "item": ITEM_CONSULTING,
              "properties": {"name": "Consulting hour", "quantity": "2.5", "amount": "375.00"}},
             {"id": "7005", "item": created["Annual subscription"],
              "properties": {"name": "Annual subscription", "quantity": "1",
                             "amount": "1080.00"}}]
    check_document(h, US1, ev, qbo, "Invoice", lines, st)


@pytest.mark.parametrize("spelling,canonical,oid", [("deals", "DEAL", 1005), ("0-3", "DEAL", 1005),
                                                    ("quotes", "QUOTE", 2002),
                                                    ("0-14", "QUOTE", 2002)])
def test_object_type_spellings_give_the_canonical_key(hsqb, spelling, canonical, oid):
    h = hsqb
    ev = h.event("create_estimate", spelling, oid, US1)
    assert ev.key == ("%d:%s:%d" % (PORTAL1, canonical, oid)).encode()
    res = run_one(h, ev)
    check_success(res, ev, "create_estimate", canonical, oid, US1)


# ---- customer matching ---------------------------------------------------------------------

def test_existing_customer_matched_by_name_and_email_ignoring_case(hsqb):
    h = hsqb
    h.sandbox.seed_qbo(US1, Customer=[{
        "DisplayName": "Ada Lovelace (Engines)", "GivenName": "Ada", "FamilyName": "Lovelace",
        "PrimaryEmailAddr": {"Address": "ADA@Example.COM"}}])
    st = h.sandbox.qbo(US1)
    ada = next(c for c in st["Customer"] if c["DisplayName"] == "Ada Lovelace (Engines)")
    seed_object(h, "deals", 19010, ["301"], [consulting()])
    ev = h.event("create_sales_receipt", "DEAL", 19010, US1)
    qbo = check_success(run_one(h, ev), ev, "create_sales_receipt", "DEAL", 19010, US1)
    assert qbo["customer_id"] == ada["Id"]
    assert qbo["created_customer"] is False
    st2 = h.sandbox.qbo(US1)
    assert len(st2["Customer"]) == len(st["Customer"])
    check_document(h, US1, ev, qbo, "SalesReceipt", st=st2)


def test_same_name_other_email_creates_customer_with_disambiguated_name(hsqb):
    """Deal 1005's contact Grace Hopper (grace.h@navy.example) is not QBO's Grace Hopper
    (grace@cobol.example): a new customer, whose DisplayName cannot be the plain name."""
    h = hsqb
    before = h.sandbox.qbo(US1)
    ev = h.event("create_invoice", "DEAL", 1005, US1)
    qbo = check_success(run_one(h, ev), ev, "create_invoice", "DEAL", 1005, US1)
    assert qbo["created_customer"] is True and qbo["customer_id"] != "6"
    st = h.sandbox.qbo(US1)
    assert len(st["Customer"]) == len(before["Customer"]) + 1
    c = customer(st, qbo["customer_id"])
    assert (c["GivenName"], c["FamilyName"]) == ("Grace", "Hopper")
    assert c["PrimaryEmailAddr"]["Address"].lower() == "grace.h@navy.example"
    assert c["DisplayName"] != "Grace Hopper" and "Grace Hopper" in c["DisplayName"]
    assert customer(st, "6") == customer(before, "6")  # QBO's own Grace Hopper untouched
    # The next event for that contact finds the customer just created.
    ev2 = h.event("create_estimate", "DEAL", 1005, US1)
    qbo2 = check_success(run_one(h, ev2), ev2, "create_estimate", "DEAL", 1005, US1)
    assert qbo2["customer_id"] == qbo["customer_id"] and qbo2["created_customer"] is False
    assert len(h.sandbox.qbo(US1)["Customer"]) == len(before["Customer"]) + 1


@pytest.mark.parametrize("contact", ["302", "303", "304"],
                         ids=["apostrophe", "accents", "emoji"])
def test_contact_names_with_apostrophe_accents_emoji(hsqb, contact):
    h = hsqb
    first, last, email = CONTACTS[contact]
    oid = 19020 + int(contact) - 300
    seed_object(h, "deals", oid, [contact], [consulting()])
    before = len(h.sandbox.qbo(US1)["Customer"])
    ev = h.event("create_invoice", "DEAL", oid, US1)
    qbo = check_success(run_one(h, ev), ev, "create_invoice", "DEAL", oid, US1)
    st = h.sandbox.qbo(US1)
    c = customer(st, qbo["customer_id"])
    assert qbo["created_customer"] is True
    assert (c["GivenName"], c["FamilyName"]) == (first, last)
    assert c["DisplayName"] == "%s %s" % (first, last)
    assert c["PrimaryEmailAddr"]["Address"] == email
    # Matching by these names must work too (QBO query quoting): no second customer.
    ev2 = h.event("create_sales_receipt", "DEAL", oid, US1)
    qbo2 = check_success(run_one(h, ev2), ev2, "create_sales_receipt", "DEAL", oid, US1)
    assert qbo2["customer_id"] == qbo["customer_id"] and qbo2["created_customer"] is False
    assert len(h.sandbox.qbo(US1)["Customer"]) == before + 1


@pytest.mark.parametrize("kind", ["DEAL", "QUOTE"])
def test_lowest_contact_id_of_three_is_the_customer(hsqb, kind):
    h = hsqb
    # Associations come back in insertion order unless told otherwise; shuffle them.
    h.sandbox.config({"hubspot": {"association_order": "shuffle"}})
    oid = 19030 if kind == "DEAL" else 29030
    seed_object(h, "deals" if kind == "DEAL" else "quotes", oid, ["306", "304", "302", "303"],
                [consulting()])
    ev = h.event("create_invoice", kind, oid, US1)
    qbo = check_success(run_one(h, ev), ev, "create_invoice", kind, oid, US1)
    c = customer(h.sandbox.qbo(US1), qbo["customer_id"])
    assert c["PrimaryEmailAddr"]["Address"] == CONTACTS["302"][2], c


def test_customer_source_names_a_contact(hsqb):
    h = hsqb
    seed_object(h, "deals", 19031, ["306", "302", "303"], [consulting()])
    ev = h.event("create_estimate", "DEAL", 19031, US1, customer_source="contact:303")
    qbo = check_success(run_one(h, ev), ev, "create_estimate", "DEAL", 19031, US1)
    c = customer(h.sandbox.qbo(US1), qbo["customer_id"])
    assert c["PrimaryEmailAddr"]["Address"] == CONTACTS["303"][2]


# ---- permanent failures: result, dead letter, nothing created ------------------------------

def check_permanent_failure(h, ev, code, realm=US1):
    since = h.sandbox.mark()
    before = h.sandbox.qbo(realm)
    res = run_one(h, ev)
    err = check_failure(res, ev, code, realm)
    check_dlq(h, ev, code, err)
    assert qbo_writes(h, since, realm) == [], "QBO writes for a failed event"
    after = h.sandbox.qbo(realm)
    for k in ("Customer", "Item") + DOC_KINDS:
        assert after[k] == before[k], "%s changed" % k
    return res, err


@pytest.mark.parametrize("kind,oid,code", [("DEAL", 1003, "NO_CONTACT"),
                                           ("QUOTE", 2003, "QUOTE_STATUS_NOT_ALLOWED")])
def test_no_contact(hsqb, kind, oid, code):
    """Quote 2003 is also a DRAFT: its status refuses it first (quotes.allowed_statuses)."""
    h = hsqb
    check_permanent_failure(h, h.event("create_invoice", kind, oid, US1), code)


@pytest.mark.parametrize("kind,oid", [("DEAL", 987654321), ("DEAL", 1006), ("QUOTE", 987654322)],
                         ids=["missing-deal", "archived-deal", "missing-quote"])
def test_object_not_found(hsqb, kind, oid):
    h = hsqb
    res, err = check_permanent_failure(h, h.event("create_estimate", kind, oid, US1),
                                       "OBJECT_NOT_FOUND")
    assert err.get("http_status") in (None, 404)


def seed_unmatched_products_deal(h, oid):
    return seed_object(h, "deals", oid, ["304"], [
        consulting(),
        line("Setup fee", "1", "500.00", "500.00"),
        line("Gold plan", "2", "99.50", "199.00", sku="GOLD-1"),
    ])


def test_product_not_found_names_every_line_and_creates_nothing(hsqb):
    h = hsqb
    lines = seed_unmatched_products_deal(h, 19040)
    ev = h.event("create_invoice", "DEAL", 19040, US1, create_missing_products="false")
    res, err = check_permanent_failure(h, ev, "PRODUCT_NOT_FOUND")
    missing = err["details"]["line_items"]
    assert sorted(m["id"] for m in missing) == sorted([lines[1]["id"], lines[2]["id"]])
    by_id = {m["id"]: m for m in missing}
    assert by_id[lines[1]["id"]]["name"] == "Setup fee"
    assert by_id[lines[2]["id"]]["name"] == "Gold plan"
    assert by_id[lines[2]["id"]]["sku"] == "GOLD-1"
    assert by_id[lines[1]["id"]].get("sku") is None
    assert "Setup fee" in err["message"] and "Gold plan" in err["message"]
    assert "Consulting hour" not in err["message"]


def test_create_missing_products_creates_the_items_once(hsqb):
    h = hsqb
    lines = seed_unmatched_products_deal(h, 19041)
    items_before = len(h.sandbox.qbo(US1)["Item"])
    ev = h.event("create_invoice", "DEAL", 19041, US1, create_missing_products="true")
    qbo = check_success(run_one(h, ev), ev, "create_invoice", "DEAL", 19041, US1)
    created = {i["name"]: i["id"] for i in qbo["created_items"]}
    assert sorted(created) == ["Gold plan", "Setup fee"]
    st = h.sandbox.qbo(US1)
    assert len(st["Item"]) == items_before + 2
    names = {i["Id"]: i["Name"] for i in st["Item"]}
    assert names[created["Setup fee"]] == "Setup fee" and names[created["Gold plan"]] == "Gold plan"
    lines[1]["item"], lines[2]["item"] = created["Setup fee"], created["Gold plan"]
    check_document(h, US1, ev, qbo, "Invoice", lines, st)
    # Again: the items now exist and are reused, nothing is created twice.
    ev2 = h.event("create_estimate", "DEAL", 19041, US1, create_missing_products="true")
    qbo2 = check_success(run_one(h, ev2), ev2, "create_estimate", "DEAL", 19041, US1)
    assert qbo2["created_items"] == []
    st2 = h.sandbox.qbo(US1)
    assert len(st2["Item"]) == items_before + 2
    check_document(h, US1, ev2, qbo2, "Estimate", lines, st2)


def test_warm_replicas_resolve_from_memory(hsqb):
    """cache.local_ttl (on by default; off in this suite, see DEFAULT_WORKER_ENV): once a
    replica has resolved a deal's customer and items, the next documents for them need no
    QBO lookup even when the Redis mappings are gone, and /metrics counts the hits."""
    h = hsqb
    h.stop_replicas()
    h.start_replicas(1, extra_env={"HSQB_CACHE_LOCAL_TTL": "60s"})
    try:
        lines = seed_unmatched_products_deal(h, 19051)
        ev = h.event("create_invoice", "DEAL", 19051, US1, create_missing_products="true")
        qbo = check_success(run_one(h, ev), ev, "create_invoice", "DEAL", 19051, US1)
        lines[1]["item"] = {i["name"]: i["id"] for i in qbo["created_items"]}["Setup fee"]
        lines[2]["item"] = {i["name"]: i["id"] for i in qbo["created_items"]}["Gold plan"]
        h.flush_redis("%smap:*" % harness.KEY_PREFIX)
        mark = h.sandbox.mark()
        ev2 = h.event("create_estimate", "DEAL", 19051, US1, create_missing_products="true")
        qbo2 = check_success(run_one(h, ev2), ev2, "create_estimate", "DEAL", 19051, US1)
        assert qbo2["created_items"] == [] and qbo2["customer_id"] == qbo["customer_id"]
        check_document(h, US1, ev2, qbo2, "Estimate", lines, h.sandbox.qbo(US1))
        queries = [r for r in h.sandbox.requests(since=mark, vendor="qbo")
                   if "/query" in r.get("path", "")]
        assert queries == [], "lookups despite a warm replica: %r" % queries
        time.sleep(1.1)  # the counters are copied to /metrics at most once a second
        ev3 = h.event("create_estimate", "DEAL", 19051, US1, create_missing_products="true")
        check_success(run_one(h, ev3), ev3, "create_estimate", "DEAL", 19051, US1)
        samples, _ = parse_metrics(h.replicas[0].metrics_text())
        assert metric_sum(samples, "hsqb_mapping_cache_lookups_total", result="hit") >= 3
    finally:
        h.stop_replicas()
        h.start_replicas(2)


def test_term_not_found(hsqb):
    h = hsqb
    ev = h.event("create_invoice", "DEAL", 1005, US1, payment_terms="Net 45")
    res, err = check_permanent_failure(h, ev, "TERM_NOT_FOUND")
    assert "Net 45" in err["message"]


@pytest.mark.parametrize("term,term_id,days", [("Net 15", "2", 15), ("Due on receipt", "1", 0),
                                               ("Net 30", "3", 30)])
def test_invoice_due_date_follows_the_term(hsqb, term, term_id, days):
    h = hsqb
    ev = h.event("create_invoice", "QUOTE", 2002, US1, payment_terms=term)
    qbo = check_success(run_one(h, ev), ev, "create_invoice", "QUOTE", 2002, US1)
    doc = check_document(h, US1, ev, qbo, "Invoice")
    assert doc["SalesTermRef"]["value"] == term_id
    txn = datetime.date.fromisoformat(doc["TxnDate"])
    assert doc["TxnDate"] == txn_date_of(ev)
    assert datetime.date.fromisoformat(doc["DueDate"]) == txn + datetime.timedelta(days=days)
    # quote 2002: 12 widgets at 19.99 plus their NY tax (8.875%: 21.29), as HubSpot totals it
    assert qbo["total_cents"] == 26117


def test_canadian_company_is_refused(hsqb):
    h = hsqb
    ev = h.event("create_invoice", "DEAL", 1005, CA1)
    res, err = check_permanent_failure(h, ev, "QBO_COMPANY_NOT_US", realm=CA1)
    assert res["data"].get("realm_id") in (None, CA1)


# ---- invalid events -----------------------------------------------------------------------

@pytest.mark.parametrize("raw", [b"\x00\xffnot json at all {", b'{"specversion":"1.0","id":',
                                 b"\xef\xbb\xbf" + b"{}"], ids=["binary", "truncated", "bom"])
def test_undecodable_bytes_go_to_the_dlq_byte_for_byte(hsqb, raw):
    h = hsqb
    key = b"garbage-" + raw[:4]
    ev = h.produce_raw(raw, key=key, headers=[("content-type", b"application/cloudevents+json")])
    res = h.wait_results([ev.coords])[ev.coords][0].json
    check_failure(res, ev, "INVALID_EVENT")
    assert res["id"] == ev.coords + ":result"
    assert "subject" not in res
    rec = check_dlq(h, ev, "INVALID_EVENT", res["data"]["error"], event_id=False)
    assert rec.value == raw


def test_schema_invalid_event_is_dead_lettered_unchanged(hsqb):
    h = hsqb
    ev = h.event("create_invoice", "DEAL", 1005, US1)
    doc = json.loads(ev.value)
    doc["data"]["origin"]["portalId"] = str(PORTAL1)  # a string is refused (schema)
    # Pretty-printed with odd spacing: the dead letter must keep these exact bytes.
    ev.value = json.dumps(doc, indent=3, ensure_ascii=True).encode() + b"\n  "
    since = h.sandbox.mark()
    h.produce(ev)
    # The id is readable, so the result may be keyed by it or by where the event was.
    key, recs = h.collector.wait_any([ev.id, ev.coords], timeout=30, on_timeout=h.diagnose)
    res = recs[0].json
    check_failure(res, ev, "INVALID_EVENT")
    assert res["id"] == key + ":result"
    check_dlq(h, ev, "INVALID_EVENT", res["data"]["error"], event_id=None)
    assert h.sandbox.requests(since=since) == [], "an invalid event reached an API"


# ---- exactly once ---------------------------------------------------------------------------

def test_duplicate_event_three_times_gives_one_document_and_the_same_result(hsqb):
    h = hsqb
    before = counts(h.sandbox.qbo(US1))
    ev = h.event("create_invoice", "DEAL", 1005, US1)
    for _ in range(3):
        h.produce(ev)
    recs = h.wait_results([ev.id], timeout=45, count=3)[ev.id]
    assert len(recs) == 3
    first = recs[0].json
    qbo = check_success(first, ev, "create_invoice", "DEAL", 1005, US1)
    for r in recs[1:]:
        assert r.json["type"] == first["type"] and r.json["id"] == first["id"]
        assert r.json["data"]["qbo"] == qbo
    st = h.sandbox.qbo(US1)
    check_document(h, US1, ev, qbo, "Invoice", st=st)
    after = counts(st)
    assert after["Invoice"] == before["Invoice"] + 1
    assert after["Customer"] == before["Customer"] + 1


def test_same_event_on_every_partition_at_once(hsqb):
    """The same event delivered to all six partitions, so both replicas hold copies at the
    same time: one document, one customer, and every copy reports that document."""
    h = hsqb
    before = counts(h.sandbox.qbo(US1))
    ev = h.event("create_sales_receipt", "QUOTE", 2002, US1)
    copies = []
    for p in range(6):
        c = harness.Event(ev.id, ev.key, ev.value, ev.doc)
        h.produce(c, partition=p)
        copies.append(c)
    recs = h.wait_results([ev.id], timeout=60, count=6)[ev.id]
    qbos = {json.dumps(r.json["data"].get("qbo"), sort_keys=True) for r in recs}
    assert len(qbos) == 1, "copies disagree: %r" % qbos
    qbo = check_success(recs[0].json, ev, "create_sales_receipt", "QUOTE", 2002, US1)
    st = h.sandbox.qbo(US1)
    check_document(h, US1, ev, qbo, "SalesReceipt", st=st)
    after = counts(st)
    assert after["SalesReceipt"] == before["SalesReceipt"] + 1
    assert after["Customer"] == before["Customer"] + 1
    assert h.dlq_for([c.coords for c in copies]) == {c.coords: [] for c in copies}


def seed_many(h, first_id, n, portal=PORTAL1, contacts=("302", "303", "304", "306", "301")):
    """n deals first_id.. with one contact each (rotating) and one or two lines."""
    catalogue = [
        lambda: consulting("1", "150.00"),
        lambda: line("Widget", "3", "19.99", "59.97", sku="WID-001", item=ITEM_WIDGET),
        lambda: line("Hours", "2.5", "50.00", "125.00", item=ITEM_HOURS),
    ]
    all_lines, deals = [], []
    spec = {}
    for i in range(n):
        ls = [catalogue[i % 3]()] + ([catalogue[(i + 1) % 3]()] if i % 2 else [])
        all_lines += ls
        spec[first_id + i] = ls
        deals.append({"id": str(first_id + i), "properties": {"dealname": "bulk %d" % i},
                      "associations": {"contacts": [contacts[i % len(contacts)]],
                                       "line_items": [l["id"] for l in ls]}})
    h.sandbox.seed_hubspot(portal, line_items=[{"id": l["id"], "properties": l["properties"]}
                                               for l in all_lines], deals=deals)
    return spec


def replicas_that_logged(h, replicas, ids):
    """{replica name: set of ids} of ids that appear in each replica's log lines."""
    out = {}
    want = set(ids)
    for r in replicas:
        seen = set()
        for o in r.log_lines()[0]:
            for v in o.values():
                if isinstance(v, str) and v in want:
                    seen.add(v)
        out[r.name] = seen
    return out


def test_two_replicas_share_the_partitions(hsqb):
    h = hsqb
    assert len(h.replicas) == 2
    spec = seed_many(h, 19100, 24)
    evs = [h.event(("create_invoice", "create_estimate", "create_sales_receipt")[i % 3], "DEAL",
                   oid, US1) for i, oid in enumerate(spec)]
    h.produce(*evs)
    got = h.wait_results([e.id for e in evs], timeout=60)
    st = h.sandbox.qbo(US1)
    for e in evs:
        res = got[e.id][0].json
        oid = e.doc["data"]["object"]["objectId"]
        qbo = check_success(res, e, e.doc["type"].split(".")[-1], "DEAL", oid, US1)
        check_document(h, US1, e, qbo, qbo["entity"], spec[oid], st)
    assert len({got[e.id][0].json["data"]["source"]["partition"] for e in evs}) >= 2
    seen = replicas_that_logged(h, h.replicas, [e.id for e in evs])
    assert all(seen.values()), "a replica processed nothing: %r" % {
        k: len(v) for k, v in seen.items()}
    # Each contact is one customer, however many replicas created documents for it.
    emails = [c["PrimaryEmailAddr"]["Address"].lower() for c in st["Customer"]
              if c.get("PrimaryEmailAddr")]
    assert len(emails) == len(set(emails)), "a customer was created twice: %r" % emails


# ---- transient failures -------------------------------------------------------------------

def test_qbo_429_with_retry_after_and_5xx_are_retried(hsqb):
    h = hsqb
    sb = h.sandbox
    f429 = sb.add_fault(method="POST", path="/v3/company/*/invoice", vendor="qbo", status=429,
                        headers={"Retry-After": "2"}, times=1,
                        body={"Fault": {"Error": [{"Message": "ThrottleExceeded",
                                                   "code": "003001"}], "type": "SERVICE"}})
    f500 = sb.add_fault(path="/v3/company/*/query", vendor="qbo", status=500, times=1,
                        body={"Fault": {"Error": [{"Message": "Internal", "code": "10000"}],
                                        "type": "SystemFault"}})
    fhs = sb.add_fault(method="GET", path="/crm/*", vendor="hubspot", status=502, times=1,
                       body="Bad gateway")
    ev = h.event("create_invoice", "DEAL", 1005, US1)
    qbo = check_success(run_one(h, ev, timeout=60), ev, "create_invoice", "DEAL", 1005, US1)
    check_document(h, US1, ev, qbo, "Invoice")
    for f in (f429, f500, fhs):
        assert sb.fault(f["id"])["fired"] == f["remaining"], sb.fault(f["id"])
    posts = sb.requests(vendor="qbo", method="POST", path="/v3/company/%s/invoice" % US1)
    assert [p["status"] for p in posts] == [429, 200], posts
    waited = posts[1]["time_ms"] - posts[0]["time_ms"]
    assert waited >= 1800, "retried %d ms after a 429 with Retry-After: 2" % waited


def test_lost_responses_and_timeouts_do_not_duplicate(hsqb):
    """The create happened but the answer was replaced by a 500, delayed past the
    worker's http.timeout (3 s here), or dropped: the retry must not create again."""
    h = hsqb
    sb = h.sandbox
    faults = [
        sb.add_fault(method="POST", path="/v3/company/*/invoice", vendor="qbo", phase="after",
                     status=500, body={"Fault": {"Error": [{"code": "10000"}]}}, times=1),
        sb.add_fault(method="POST", path="/v3/company/*/estimate", vendor="qbo", phase="after",
                     delay_ms=5000, times=1),
        sb.add_fault(method="POST", path="/v3/company/*/salesreceipt", vendor="qbo",
                     phase="after", drop=True, times=1),
        sb.add_fault(method="POST", path="/v3/company/*/customer", vendor="qbo", phase="after",
                     drop=True, times=1),
    ]
    before = counts(sb.qbo(US1))
    evs = [h.event(a, "QUOTE", 2002, US1) for a in ENTITY]
    h.produce(*evs)
    got = h.wait_results([e.id for e in evs], timeout=90)
    st = sb.qbo(US1)
    for e in evs:
        action = e.doc["type"].split(".")[-1]
        qbo = check_success(got[e.id][0].json, e, action, "QUOTE", 2002, US1)
        check_document(h, US1, e, qbo, ENTITY[action], st=st)
    after = counts(st)
    for k in DOC_KINDS:
        assert after[k] == before[k] + 1, k
    assert after["Customer"] == before["Customer"] + 1, "customer created twice"
    for f in faults:
        assert sb.fault(f["id"])["fired"] == 1, sb.fault(f["id"])


def test_hubspot_429_storm(hsqb):
    """HubSpot allows 12 requests per 10 s here, far below the worker's own limit: the
    worker hits 429s, backs off (Retry-After is sent) and still completes everything."""
    h = hsqb
    spec = seed_many(h, 19200, 5)
    h.sandbox.config({"hubspot_rate_10s": 12, "hubspot": {"retry_after_on_429": True}})
    evs = [h.event("create_estimate", "DEAL", oid, US1) for oid in spec]
    h.produce(*evs)
    got = h.wait_results([e.id for e in evs], timeout=120)
    st = h.sandbox.qbo(US1)
    for e in evs:
        oid = e.doc["data"]["object"]["objectId"]
        qbo = check_success(got[e.id][0].json, e, "create_estimate", "DEAL", oid, US1)
        check_document(h, US1, e, qbo, "Estimate", spec[oid], st)
    assert h.sandbox.requests(vendor="hubspot", status=429), "no 429 happened: no storm"


def test_shared_rate_limit_keeps_sandbox_429s_near_zero(hsqb):
    """HubSpot allows 110 per 10 s per portal, the worker is configured for 100 (its
    default): two replicas sharing the limiter through Redis stay under it."""
    h = hsqb
    h.sandbox.config({"hubspot_rate_10s": 110})
    spec = seed_many(h, 19300, 60)
    evs = [h.event("create_invoice", "DEAL", oid, (US1, US2)[i % 2])
           for i, oid in enumerate(spec)]
    h.produce(*evs)
    got = h.wait_results([e.id for e in evs], timeout=150)
    for e in evs:
        assert got[e.id][0].json["data"]["status"] == "succeeded", got[e.id][0].json
    hs = h.sandbox.requests(vendor="hubspot")
    throttled = [r for r in hs if r["status"] == 429]
    qbo429 = h.sandbox.requests(vendor="qbo", status=429)
    assert len(hs) > 110, "only %d HubSpot calls: no pressure on the limit" % len(hs)
    assert len(throttled) <= 2, "%d of %d HubSpot calls were throttled" % (len(throttled),
                                                                         len(hs))
    assert len(qbo429) <= 2, "%d QBO calls were throttled" % len(qbo429)
    print("rate limit: %d HubSpot calls, %d throttled; %d QBO 429s" % (
        len(hs), len(throttled), len(qbo429)))


# ---- OAuth -------------------------------------------------------------------------------------

def test_qbo_token_expiry_with_three_replicas_refreshes_once(hsqb):
    """Access tokens die mid-run (sandbox reset drops them while the worker still holds
    one valid for an hour) and refresh tokens rotate on every refresh: with three
    replicas hitting 401 together, exactly one refresh reaches Intuit and nothing fails
    (a second refresh with the rotated-away token would get invalid_grant)."""
    h = hsqb
    third = h.start_replicas(1)[0]
    try:
        for r in h.replicas:
            r.wait_ready(40)
        h.partition_owners(timeout=40)
        spec = seed_many(h, 19400, 3)
        warm = [h.event("create_estimate", "DEAL", oid, US2) for oid in spec]
        h.produce(*warm)
        for e in warm:
            assert h.wait_result(e, 60)["data"]["status"] == "succeeded"
        h.sandbox.reset()  # every access token dies; the stored refresh token still works
        h.sandbox.config({"oauth": {"rotate_after_ms": 1}})
        h.flush_redis("%smap:*" % harness.KEY_PREFIX)
        spec = seed_many(h, 19410, 15)
        since = h.sandbox.mark()
        evs = [h.event("create_invoice", "DEAL", oid, US2) for oid in spec]
        h.produce(*evs)
        got = h.wait_results([e.id for e in evs], timeout=90)
        for e in evs:
            assert got[e.id][0].json["data"]["status"] == "succeeded", got[e.id][0].json
        refreshes = [r for r in h.sandbox.requests(since=since, vendor="oauth")
                     if "grant_type=refresh_token" in r["body"]]
        assert len(refreshes) == 1, "%d refresh calls: %r" % (
            len(refreshes), [(r["status"], r["time"]) for r in refreshes])
        assert refreshes[0]["status"] == 200
        seen = replicas_that_logged(h, h.replicas, [e.id for e in evs])
        assert sum(1 for v in seen.values() if v) >= 2, "only one replica worked: %r" % {
            k: len(v) for k, v in seen.items()}
        oauth = h.sandbox.oauth()["realms"][US2]
        assert oauth["refresh_token_valid"] is True
        stored = h.stored_token("%soauth:{%s}" % (harness.KEY_PREFIX, US2), "refresh_token")
        assert stored is not None and stored == oauth["refresh_token"], (
            "Redis does not hold the rotated refresh token")
    finally:
        h.stop_replicas([third])
        # The sandbox forgets the rotated token at its next reset: store the seed's again.
        h.reset()
        h.store_credentials(realms=[US2], portals=[PORTAL1])


# ---- replicas: SIGTERM drain, SIGKILL mid-stream --------------------------------------------

def refused_commits(replicas):
    """How many commits the replicas logged as refused by the broker."""
    n = 0
    for r in set(replicas):
        good, _ = r.log_lines()
        n += sum(1 for o in good if "commit" in str(o.get("msg", ""))
                 and "failed" in str(o.get("msg", "")))
    return n


def test_sigterm_drains_in_flight_work_and_the_other_replica_takes_over(hsqb):
    h = hsqb
    h.partition_owners(timeout=40)  # no rebalance left over from an earlier test
    spec = seed_many(h, 19500, 16)
    # Slow creates so that work is in flight when SIGTERM arrives.
    h.sandbox.add_fault(method="POST", path="/v3/company/*/invoice", vendor="qbo",
                        phase="after", delay_ms=800, times=8)
    evs = [h.event("create_invoice", "DEAL", oid, US1) for oid in spec]
    h.produce(*evs)
    h.wait_results([evs[0].id], timeout=60)
    victim = h.replicas[1]
    refused_before = refused_commits(h.replicas)
    t0 = time.monotonic()
    rc = h.stop_replicas([victim])[victim.name]
    assert rc == 0, "SIGTERM exit status %r\n%s" % (rc, victim.tail())
    assert time.monotonic() - t0 < 15
    try:
        got = h.wait_results([e.id for e in evs], timeout=90)
        st = h.sandbox.qbo(US1)
        for e in evs:
            oid = e.doc["data"]["object"]["objectId"]
            qbo = check_success(got[e.id][0].json, e, "create_invoice", "DEAL", oid, US1)
            check_document(h, US1, e, qbo, "Invoice", spec[oid], st)
        # A clean stop commits what it finished: nothing is delivered a second time --
        # unless the broker refused a commit because the group was rebalancing
        # (librdkafka 2.0.2's mock cluster refuses every commit while a group is joining,
        # which real Kafka accepts from the current generation; the worker logs it). Even
        # then a redelivered event must only re-publish its stored outcome.
        time.sleep(2)
        results = h.results_for([e.id for e in evs])
        again = {i: len(v) for i, v in results.items() if len(v) > 1}
        if again:
            assert refused_commits(h.replicas + [victim]) > refused_before, (
                "events redelivered after a clean SIGTERM although no commit was refused: %r"
                % again)
            for i in again:
                first = results[i][0].json["data"]
                for r in results[i][1:]:
                    assert r.json["data"]["status"] == first["status"]
                    assert r.json["data"].get("qbo") == first.get("qbo"), (
                        "a redelivered event did not re-publish its stored outcome: %s" % i)
    finally:
        h.start_replicas(1)


def test_sigkill_mid_stream_of_500_events(hsqb):
    """500 events over 120 deals, two replicas with the HubSpot/QBO limits raised so the
    stream runs fast. Events on the victim replica's partitions go to realm US2, whose
    document creates are stalled (the create happens in QBO, the answer comes 2.5 s
    later); the victim is SIGKILLed while they hang, and restarted. Afterwards: every
    event has one consistent outcome on hsqb.results and a done marker in Redis, exactly
    one document, no contact became two customers, and the events the victim had in
    flight were finished by the other replicas."""
    h = hsqb
    # Both portals book US1 and US2: those unbound, unbound realms let through (the upgrade
    # setting, README "Tenants"); a bound realm serves one portal only.
    fast = dict(harness.UPGRADE_ENV, HSQB_HUBSPOT_RATE_LIMIT_PER_10S="1000",
                HSQB_QBO_RATE_LIMIT_PER_MIN="10000")
    spec = seed_many(h, 30000, 100)
    spec2 = seed_many(h, 31000, 20, portal=PORTAL2, contacts=("401",))
    h.sandbox.config({"hubspot_rate_10s": 0, "qbo_rate_min": 0})
    h.stop_replicas()
    try:
        with h.cross_portal():
            h.start_replicas(2, extra_env=fast)
            owners = h.partition_owners()
            victim = h.replicas[0]
            victim_parts = {p for p, r in owners.items() if r is victim}
            actions = list(ENTITY)
            deals = [(PORTAL1, d) for d in spec] + [(PORTAL2, d) for d in spec2]
            evs = []
            for i in range(500):
                portal, oid = deals[i % len(deals)]
                part = zlib.crc32(("%d:DEAL:%d" % (portal, oid)).encode()) % 6
                realm = US2 if part in victim_parts else US1
                e = harness.make_event(actions[i % 3], "DEAL", oid, realm, portal=portal)
                e.part = part
                evs.append(e)
            stalls = [h.sandbox.add_fault(method="POST", path="/v3/company/%s/%s" % (US2, k),
                                          vendor="qbo", phase="after", delay_ms=2500, skip=10,
                                          times=6)
                      for k in ("invoice", "estimate", "salesreceipt")]
            for part in range(6):
                batch = [e for e in evs if e.part == part]
                if batch:
                    h.produce(*batch, partition=part)

            def stalled():
                return sum(h.sandbox.fault(f["id"])["fired"] for f in stalls) >= 3
            harness.wait_until(stalled, 90, 0.05, "stalled QBO creates")
            victim.kill()
            h.restart(victim)
            ids = [e.id for e in evs]
            got = h.wait_results(ids, timeout=180)
            states = {US1: h.sandbox.qbo(US1), US2: h.sandbox.qbo(US2)}
            problems = []
            for e in evs:
                realm = e.doc["data"]["inputFields"]["qbo_realm_id"]
                recs = got[e.id]
                kinds = {(r.json["data"]["status"], json.dumps(r.json["data"].get("qbo"),
                                                               sort_keys=True)) for r in recs}
                docs = docs_for_event(states[realm], e.id)
                first = recs[0].json["data"]
                if len(kinds) != 1:
                    problems.append("%s: %d different outcomes %r" % (e.id, len(kinds), kinds))
                elif first["status"] != "succeeded":
                    problems.append("%s: %s" % (e.id, first.get("error")))
                elif len(docs) != 1 or docs[0][1]["Id"] != first["qbo"]["id"]:
                    problems.append("%s: %d documents %r for result %s" % (
                        e.id, len(docs), [(k, d["Id"]) for k, d in docs], first["qbo"]["id"]))
                marker = h.event_marker(e.id)
                if marker is None or not ("done" in str(marker) or e.id + ":result" in str(marker)):
                    problems.append("%s: Redis marker %r" % (e.id, str(marker)[:100]))
            for realm, st in states.items():
                emails = [c["PrimaryEmailAddr"]["Address"].lower() for c in st["Customer"]
                          if c.get("PrimaryEmailAddr")]
                dup = {m for m in emails if emails.count(m) > 1}
                if dup:
                    problems.append("%s: customers created twice: %s" % (realm, sorted(dup)))
            assert not problems, "%d problems, e.g.:\n%s" % (len(problems),
                                                               "\n".join(problems[:15]))
            # The kill hit work in flight: creates that reached QBO on the victim, whose
            # events were then finished (without a second document) by another replica.
            fired = {f["id"] for f in stalls}
            stalled_ids = set()
            for r in h.sandbox.requests(vendor="qbo", method="POST"):
                if r.get("fault_id") in fired:
                    stalled_ids.update(re.findall(r"ap-\d+-[0-9a-f]{20}-7-0", r["body"]))
            assert stalled_ids & set(ids), "no stalled create names one of our events"
            by_victim = replicas_that_logged(h, [victim], ids)[victim.name]
            taken_over = (stalled_ids & set(ids)) - by_victim
            assert taken_over, ("the victim finished every stalled event itself: the kill hit "
                                "nothing")
            print("sigkill: %d events, %d stalled creates on the victim, %d finished elsewhere, "
                  "%d results in all" % (len(ids), len(stalled_ids & set(ids)), len(taken_over),
                                         sum(len(v) for v in got.values())))
    finally:
        h.stop_replicas()
        h.start_replicas(2)


# ---- operations -----------------------------------------------------------------------------

FAMILIES = {  # issue 4 "Operations" -> worker/metrics.h names
    "events by action and outcome": "hsqb_events_total",
    "duration histogram": "hsqb_event_duration_seconds",
    "in-flight": "hsqb_in_flight",
    "API calls by api/endpoint/status": "hsqb_api_calls_total",
    "retries": "hsqb_retries_total",
    "rate-limit waits": "hsqb_ratelimit_wait_seconds_total",
    "DLQ count": "hsqb_dlq_total",
    "consumer lag": "hsqb_consumer_lag",
    "mapping cache lookups": "hsqb_mapping_cache_lookups_total",
}


def test_replicas_cannot_dump_core(hsqb):
    """Tokens sit in the worker's memory: every replica runs with a core size limit of 0,
    soft and hard, whatever it inherited (here a hard limit of "unlimited", as a login
    shell gives)."""
    for r in hsqb.replicas:
        with open("/proc/%d/limits" % r.pid, encoding="ascii") as f:
            line = [x for x in f if x.startswith("Max core file size")][0]
        assert line.split()[4:6] == ["0", "0"], "%s: %s" % (r.name, line)


def test_metrics_health_and_readiness(hsqb):
    h = hsqb
    ok = [h.event("create_invoice", "QUOTE", 2002, US1), h.event("create_estimate", "DEAL", 1005,
                                                                 US1)]
    bad = h.event("create_invoice", "DEAL", 1003, US1)  # NO_CONTACT
    h.produce(*ok, bad)
    h.wait_results([e.id for e in ok + [bad]], timeout=45)
    time.sleep(2.5)  # librdkafka statistics every second feed the lag gauge
    merged = {}
    types = {}
    for r in h.replicas:
        for path in ("/healthz", "/readyz"):
            st, _ = harness.http_get(r.url(path))
            assert st == 200, "%s %s -> %s" % (r.name, path, st)
        samples, t = parse_metrics(r.metrics_text())
        types.update(t)
        for k, v in samples.items():
            merged[k] = merged.get(k, 0) + v
    missing = [what for what, name in FAMILIES.items() if name not in types]
    assert not missing, "no metric family for: %s" % ", ".join(missing)
    assert types["hsqb_event_duration_seconds"] == "histogram"
    assert types["hsqb_events_total"] == "counter"
    assert metric_sum(merged, "hsqb_events_total", action="create_invoice",
                      outcome="succeeded") >= 1
    assert metric_sum(merged, "hsqb_events_total", action="create_estimate",
                      outcome="succeeded") >= 1
    assert metric_sum(merged, "hsqb_events_total", action="create_invoice", outcome="failed") >= 1
    assert metric_sum(merged, "hsqb_event_duration_seconds_count") >= 3
    assert metric_sum(merged, "hsqb_dlq_total", code="NO_CONTACT") >= 1
    assert metric_sum(merged, "hsqb_api_calls_total", api="hubspot") >= 1
    assert metric_sum(merged, "hsqb_api_calls_total", api="qbo") >= 1
    endpoints = {dict(l).get("endpoint", "") for (n, l) in merged if n == "hsqb_api_calls_total"}
    raw = [e for e in endpoints if re.search(r"/\d{3,}", e)]
    assert not raw, "endpoint labels carry raw ids (unbounded cardinality): %r" % raw
    lag = [dict(l) for (n, l) in merged if n == "hsqb_consumer_lag"]
    assert any(l.get("topic") == harness.TOPIC_ACTIONS for l in lag), lag


def outcome_lines(lines, ev):
    """Log lines that report ev's outcome: they name the event id and carry its partition,
    offset and duration."""
    out = []
    for o in lines:
        vals = [v for v in o.values() if isinstance(v, str)]
        if ev.id not in vals:
            continue
        keys = " ".join(o)
        if "partition" in keys and "offset" in keys and "duration" in keys:
            out.append(o)
    return out


def test_json_log_lines_and_one_outcome_line_per_event(hsqb):
    h = hsqb
    evs = [h.event("create_invoice", "QUOTE", 2002, US1), h.event("create_invoice", "DEAL", 1003,
                                                                  US1)]
    h.produce(*evs)
    h.wait_results([e.id for e in evs], timeout=45)
    time.sleep(0.5)
    lines = []
    for r in h.replicas:
        good, bad = r.log_lines()
        assert not bad, "%s: lines that are not JSON objects: %r" % (r.name, bad[:3])
        for o in good:
            assert {"ts", "level", "msg"} <= set(o), o
        lines += good
    for e in evs:
        found = outcome_lines(lines, e)
        assert len(found) == 1, "%d outcome lines for %s: %r" % (len(found), e.id, found)
        o = found[0]
        assert e.key.decode() in o.values(), o
        assert str(e.partition) in map(str, o.values()) and str(e.offset) in map(str, o.values())


# ---- session-wide invariants (keep these last) --------------------------------------------

def test_zz_every_result_validates_against_the_schema(hsqb):
    c = hsqb.collector
    assert c.all_results, "no result was read at all"
    assert not c.invalid, "%d invalid results, e.g. %s" % (
        len(c.invalid), [(r.value[:300], why) for r, why in c.invalid[:3]])


JWE_HEADER = "eyJlbmMiOiJBMTI4Q0JDLUhTMjU2IiwiYWxnIjoiZGlyIn0.."


def test_zz_no_secret_in_any_worker_log(hsqb):
    """No token, refresh token or client secret (seeded, refreshed, rotated, stored) in
    any line any worker or CLI run wrote during the session."""
    h = hsqb
    secrets = h.secrets()
    needles = set()
    for s in secrets:
        core = s[len(JWE_HEADER):] if s.startswith(JWE_HEADER) else s
        if len(core) >= 12:
            needles.add(core)
            needles.add(core[:16])
    files = [p for p in h.logdir.iterdir() if p.suffix in (".log", ".stderr")
             and p.name not in harness.STACK_LOGS and not p.name.startswith("kafka-")]
    assert any(p.name.startswith("worker-") for p in files)
    leaks = []
    for p in files:
        text = p.read_bytes().decode("utf-8", "replace")
        for n in needles:
            if n in text:
                leaks.append("%s contains %s..." % (p.name, n[:6]))
    assert not leaks, leaks


SANITIZER = re.compile(r"ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:")


def test_zzz_replicas_stop_cleanly_without_sanitizer_reports(hsqb):
    """SIGTERM ends every replica with status 0, and no worker wrote a sanitizer report
    during the session (meaningful with an ASan build: BUILD=build-asan)."""
    h = hsqb
    try:
        statuses = h.stop_replicas()
    finally:
        h.start_replicas(2)  # for whatever runs after this file
    assert statuses and all(v == 0 for v in statuses.values()), statuses
    reports = []
    # every replica of the session, those of tests with a stack of their own included
    for p in sorted(h.logdir.rglob("worker-*.stderr")):
        text = p.read_text(errors="replace")
        m = SANITIZER.search(text)
        if m:
            reports.append("%s: %s" % (p.name, text[m.start():m.start() + 300]))
    assert not reports, "\n".join(reports)
