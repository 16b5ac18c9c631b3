"""HubSpot emulation in hsqb-sandbox, checked against ../shared/reference/hubspot-api.md.

Each test names the reference section it pins down; a drift from the reference fails it.
"""
import datetime
import itertools
import random
import re
import time
import zoneinfo
from decimal import ROUND_HALF_UP, Decimal

import pytest

from conftest import (PORTAL1, PORTAL2, TOKEN1, TOKEN2, TOKEN_CONTACTS_ONLY, TOKEN_EXPIRED)

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
ISO_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
CENT = Decimal("0.01")
AUTH_MSG = ("Authentication credentials not found. This API supports OAuth 2.0 authentication "
            "and you can find more details at "
            "https://developers.hubspot.com/docs/methods/auth/oauth-overview")


def assert_error(r, status, category):
    assert r.status == status, r
    b = r.json()
    assert b["status"] == "error"
    assert b["category"] == category
    assert isinstance(b["message"], str) and b["message"]
    assert UUID_RE.match(b["correlationId"]), b
    return b


# ---- §4.2 read one record ----------------------------------------------------------------

def test_get_deal_envelope_and_string_properties(sb):
    r = sb.hs("GET", "/crm/v3/objects/deals/1001?properties=dealname,amount,hubspot_owner_id,"
              "no_such_property")
    assert r.status == 200
    assert r.headers["Content-Type"].startswith("application/json")
    d = r.json()
    assert d["id"] == "1001"
    assert set(d) >= {"id", "properties", "createdAt", "updatedAt", "archived"}
    assert d["archived"] is False
    assert ISO_RE.match(d["createdAt"]) and ISO_RE.match(d["updatedAt"])
    p = d["properties"]
    assert p["amount"] == "2053.97"  # numbers are strings
    assert p["hubspot_owner_id"] is None  # known, empty -> null (§9 #1)
    assert "no_such_property" not in p  # unknown names dropped
    assert p["hs_object_id"] == "1001"  # always present, with the dates
    assert "createdate" in p and "hs_lastmodifieddate" in p
    assert "associations" not in d  # only when asked for


def test_record_timestamps_round_trip_across_calendar_edges(sb):
    """createdAt/updatedAt come back exactly as seeded, leap days, century years and the
    last four-digit year included (the sandbox writes them without gmtime/snprintf)."""
    stamps = ["1970-01-01T00:00:00.000Z", "1999-12-31T23:59:59.999Z", "2000-02-29T12:34:56.789Z",
              "2024-02-29T00:00:00.001Z", "2100-02-28T23:59:59.000Z", "2100-03-01T00:00:00.000Z",
              "2400-02-29T06:07:08.090Z", "9999-12-31T23:59:59.999Z"]
    contacts = [{"id": str(880001 + i), "properties": {"email": "t%d@example.com" % i},
                 "createdAt": ts, "updatedAt": stamps[-1 - i]} for i, ts in enumerate(stamps)]
    r = sb.post("/_sandbox/seed", {"hubspot": {"portals": [
        {"portalId": int(PORTAL1), "objects": {"contacts": contacts}}]}})
    assert r.status == 200, r
    for i, ts in enumerate(stamps):
        d = sb.hs("GET", "/crm/v3/objects/contacts/%d" % (880001 + i)).json()
        assert (d["createdAt"], d["updatedAt"]) == (ts, stamps[-1 - i])


def test_default_properties_and_contact_without_email(sb):
    p = sb.hs("GET", "/crm/v3/objects/contacts/305").json()["properties"]
    assert set(p) == {"firstname", "lastname", "email", "hs_object_id", "createdate",
                      "lastmodifieddate"}
    assert p["email"] is None
    assert p["lastname"] == "D'Souza"
    deal = sb.hs("GET", "/crm/v3/objects/deals/1002").json()["properties"]
    assert set(deal) >= {"dealname", "amount", "closedate", "pipeline", "dealstage"}
    product = sb.hs("GET", "/crm/v3/objects/products/5001").json()["properties"]
    assert set(product) >= {"name", "description", "price"} and "hs_sku" not in product


def test_unicode_names_round_trip(sb):
    names = {c: sb.hs("GET", "/crm/v3/objects/contacts/%d" % c).json()["properties"]
             for c in (302, 303, 304)}
    assert names[302]["firstname"] == "Seán" and names[302]["lastname"] == "O'Brien"
    assert names[303]["lastname"] == "Ångström-Müller"
    assert names[304]["firstname"] == "Łukasz 🚀"


def test_type_ids_and_date_versioned_family_match_names(sb):
    by_name = sb.hs("GET", "/crm/v3/objects/deals/1001").json()
    by_id = sb.hs("GET", "/crm/v3/objects/0-3/1001").json()
    dated = sb.hs("GET", "/crm/objects/2026-03/deals/1001").json()
    assert by_name == by_id == dated
    for path in ("contacts/301", "0-1/301", "0-7/5001", "0-8/7001", "0-14/2001", "0-101/8001",
                 "commerce_payments/8001", "line_items/7001", "quotes/2001"):
        assert sb.hs("GET", "/crm/v3/objects/" + path).status == 200, path


def test_not_found_and_unknown_type(sb):
    b = assert_error(sb.hs("GET", "/crm/v3/objects/deals/999999"), 404, "OBJECT_NOT_FOUND")
    assert b["message"] == "resource not found"
    assert_error(sb.hs("GET", "/crm/v3/objects/deals/abc"), 404, "OBJECT_NOT_FOUND")
    b = assert_error(sb.hs("GET", "/crm/v3/objects/widgets/1"), 400, "VALIDATION_ERROR")
    assert "widgets" in b["message"]
    assert sb.hs("DELETE", "/crm/v3/objects/deals/1001").status == 405


def test_archived_records(sb):
    assert sb.hs("GET", "/crm/v3/objects/deals/1006").status == 404
    d = sb.hs("GET", "/crm/v3/objects/deals/1006?archived=true").json()
    assert d["archived"] is True and ISO_RE.match(d["archivedAt"])


def test_id_property_lookup(sb):
    d = sb.hs("GET", "/crm/v3/objects/contacts/ADA@example.com?idProperty=email").json()
    assert d["id"] == "301"


def test_properties_with_history(sb):
    d = sb.hs("GET", "/crm/v3/objects/deals/1001?propertiesWithHistory=amount").json()
    h = d["propertiesWithHistory"]["amount"]
    assert h[0]["value"] == "2053.97" and "timestamp" in h[0]


def test_repeated_properties_parameter(sb):
    p = sb.hs("GET", "/crm/v3/objects/line_items/7002?properties=hs_sku&properties=discount"
              ).json()["properties"]
    assert p["hs_sku"] == "WID-001" and p["discount"] == "2.00"


# ---- §4.3 association quirks ---------------------------------------------------------------

def test_line_items_key_has_a_space_and_companies_repeat(sb):
    d = sb.hs("GET", "/crm/v3/objects/deals/1001?associations=contacts,line_items,companies,"
              "nonsense").json()
    a = d["associations"]
    assert "line items" in a and "line_items" not in a
    assert [x["id"] for x in a["line items"]["results"]] == ["7001", "7002", "7003"]
    assert all(x["type"] == "deal_to_line_item" for x in a["line items"]["results"])
    assert [x["id"] for x in a["contacts"]["results"]] == ["301", "302", "303"]
    assert {x["type"] for x in a["contacts"]["results"]} == {"deal_to_contact"}
    companies = a["companies"]["results"]
    assert [c["id"] for c in companies] == ["900", "900"]
    assert {c["type"] for c in companies} == {"deal_to_company", "deal_to_company_unlabeled"}


def test_association_by_type_id_and_empty_omitted(sb):
    a = sb.hs("GET", "/crm/v3/objects/deals/1003?associations=0-1,0-8").json()["associations"]
    assert "contacts" not in a  # deal 1003 has no contacts: no key at all
    assert [x["id"] for x in a["line items"]["results"]] == ["7006"]
    d = sb.hs("GET", "/crm/v3/objects/quotes/2003?associations=contacts").json()
    assert "associations" not in d


def test_association_switches(sb):
    sb.config(hubspot={"line_items_key": "line_items", "association_order": "reverse",
                       "contact_unlabeled_duplicates": True})
    a = sb.hs("GET", "/crm/v3/objects/deals/1001?associations=contacts,line_items"
              ).json()["associations"]
    assert "line_items" in a and "line items" not in a
    ids = [x["id"] for x in a["contacts"]["results"]]
    assert ids == ["303", "303", "302", "302", "301", "301"]
    assert {x["type"] for x in a["contacts"]["results"]} == {"deal_to_contact",
                                                             "deal_to_contact_unlabeled"}


def test_line_items_are_copies_per_parent(sb):
    deal = sb.hs("GET", "/crm/v3/objects/deals/1001?associations=line_items").json()
    quote = sb.hs("GET", "/crm/v3/objects/quotes/2001?associations=line_items").json()
    d_ids = {x["id"] for x in deal["associations"]["line items"]["results"]}
    q_ids = {x["id"] for x in quote["associations"]["line items"]["results"]}
    assert d_ids and q_ids and not d_ids & q_ids


def test_reverse_associations_exist(sb):
    a = sb.hs("GET", "/crm/v3/objects/contacts/301?associations=deals,quotes,payments"
              ).json()["associations"]
    assert [x["id"] for x in a["deals"]["results"]] == ["1001", "1007"]
    assert a["deals"]["results"][0]["type"] == "contact_to_deal"
    assert "2001" in [x["id"] for x in a["quotes"]["results"]]
    assert "8001" in [x["id"] for x in a["payments"]["results"]]


# ---- §4.4 list and batch read -----------------------------------------------------------

def test_list_paging_visits_every_record_once(sb):
    seen, path = [], "/crm/v3/objects/contacts?limit=2"
    for _ in range(10):
        b = sb.hs("GET", path).json()
        assert len(b["results"]) <= 2
        seen += [x["id"] for x in b["results"]]
        if "paging" not in b:
            break
        after = b["paging"]["next"]["after"]
        assert b["paging"]["next"]["link"].endswith("after=" + after)
        path = "/crm/v3/objects/contacts?limit=2&after=" + after
    assert seen == ["301", "302", "303", "304", "305", "306", "307", "308", "309"]
    b = sb.hs("GET", "/crm/v3/objects/line_items").json()  # default limit 10
    assert len(b["results"]) == 10 and "paging" in b
    b = sb.hs("GET", "/crm/v3/objects/line_items?limit=1000").json()  # max 100
    assert len(b["results"]) == 31 and "paging" not in b
    assert sb.hs("GET", "/crm/v3/objects/deals?limit=abc").status == 400
    deals = [x["id"] for x in sb.hs("GET", "/crm/v3/objects/deals").json()["results"]]
    assert "1006" not in deals  # archived ones are not listed


def test_batch_read_all_found(sb):
    r = sb.hs("POST", "/crm/v3/objects/line_items/batch/read",
              {"properties": ["name", "quantity", "price", "amount", "hs_sku", "hs_product_id",
                              "discount", "hs_tax_rate_group_id"],
               "propertiesWithHistory": [], "inputs": [{"id": "7001"}, {"id": "7003"}]})
    assert r.status == 200
    b = r.json()
    assert b["status"] == "COMPLETE" and "errors" not in b
    assert ISO_RE.match(b["startedAt"]) and ISO_RE.match(b["completedAt"])
    by_id = {x["id"]: x["properties"] for x in b["results"]}
    assert by_id["7001"]["quantity"] == "10" and by_id["7001"]["hs_sku"] == "CONS-HR"
    assert by_id["7003"]["hs_sku"] is None  # no SKU -> null
    assert by_id["7003"]["hs_tax_rate_group_id"] == "1001"
    assert "associations" not in b["results"][0]


def test_batch_read_207_for_missing_ids(sb):
    r = sb.hs("POST", "/crm/v3/objects/deals/batch/read",
              {"properties": ["dealname"], "inputs": [{"id": "1001"}, {"id": "123"},
                                                      {"id": "1001"}]})
    assert r.status == 207
    b = r.json()
    assert [x["id"] for x in b["results"]] == ["1001"]  # duplicates collapse
    assert b["numErrors"] == 1
    e = b["errors"][0]
    assert e == {"status": "error", "category": "OBJECT_NOT_FOUND",
                 "message": "Could not get some DEAL objects, they may be deleted or not exist. "
                            "Check that ids are valid.",
                 "context": {"ids": ["123"]}}


def test_batch_read_limits_and_bad_input(sb):
    inputs = [{"id": str(7000 + i)} for i in range(101)]
    assert_error(sb.hs("POST", "/crm/v3/objects/line_items/batch/read", {"inputs": inputs}),
                 400, "VALIDATION_ERROR")
    assert sb.hs("POST", "/crm/v3/objects/line_items/batch/read",
                 {"inputs": inputs[:100]}).status == 207
    assert_error(sb.hs("POST", "/crm/v3/objects/deals/batch/read", "{not json"), 400,
                 "VALIDATION_ERROR")
    assert_error(sb.hs("POST", "/crm/v3/objects/deals/batch/read", {"inputs": [{"id": []}]}),
                 400, "VALIDATION_ERROR")
    assert_error(sb.hs("POST", "/crm/v3/objects/deals/batch/read", [1, 2]), 400,
                 "VALIDATION_ERROR")


# ---- §4.5 associations v4 ----------------------------------------------------------------

def test_v4_associations_numbers_types_and_paging(sb):
    b = sb.hs("GET", "/crm/v4/objects/deals/1001/associations/contacts").json()
    assert [x["toObjectId"] for x in b["results"]] == [301, 302, 303]
    assert b["results"][0]["associationTypes"] == [
        {"category": "HUBSPOT_DEFINED", "typeId": 3, "label": None}]
    c = sb.hs("GET", "/crm/v4/objects/0-3/1001/associations/companies").json()["results"]
    assert len(c) == 1 and c[0]["toObjectId"] == 900  # one entry per target, two types
    assert {(t["typeId"], t["label"]) for t in c[0]["associationTypes"]} == {
        (341, None), (5, "Primary")}
    p1 = sb.hs("GET", "/crm/v4/objects/deals/1001/associations/line_items?limit=2").json()
    assert len(p1["results"]) == 2
    p2 = sb.hs("GET", "/crm/v4/objects/deals/1001/associations/line_items?limit=2&after="
               + p1["paging"]["next"]["after"]).json()
    assert [x["toObjectId"] for x in p2["results"]] == [7003] and "paging" not in p2
    q = sb.hs("GET", "/crm/v4/objects/quotes/2001/associations/line_items").json()["results"]
    assert {t["typeId"] for x in q for t in x["associationTypes"]} == {67}
    assert sb.hs("GET", "/crm/v4/objects/deals/1/associations/contacts").status == 404
    assert sb.hs("GET", "/crm/v4/objects/deals/1003/associations/contacts").json() == {
        "results": []}


def test_v4_batch_associations(sb):
    r = sb.hs("POST", "/crm/v4/associations/deals/contacts/batch/read",
              {"inputs": [{"id": "1001"}, {"id": "1003"}, {"id": "42"}]})
    assert r.status == 207
    b = r.json()
    assert b["results"][0]["from"] == {"id": "1001"}
    assert [t["toObjectId"] for t in b["results"][0]["to"]] == [301, 302, 303]
    assert b["numErrors"] == 2
    r = sb.hs("POST", "/crm/v4/associations/deals/contacts/batch/read",
              {"inputs": [{"id": "1002"}]})
    assert r.status == 200 and r.json()["results"][0]["to"][0]["toObjectId"] == 305
    many = [{"id": str(i)} for i in range(1001)]
    assert sb.hs("POST", "/crm/v4/associations/deals/contacts/batch/read",
                 {"inputs": many}).status == 400


# ---- §4.8 commerce data and tax rates ------------------------------------------------------

def test_commerce_payment_properties(sb):
    props = "hs_initial_amount,hs_refunds_amount,hs_fees_amount,hs_latest_status,hs_net_amount"
    statuses = set()
    for pid in range(8001, 8011):
        p = sb.hs("GET", "/crm/v3/objects/commerce_payments/%d?properties=%s" % (pid, props)
                  ).json()["properties"]
        statuses.add(p["hs_latest_status"])
    assert statuses == {"succeeded", "processing", "failed", "partially_refunded", "refunded",
                        "processing_refund", "disputed_won", "disputed_lost",
                        "disputed_action_required", "disputed_awaiting_decision"}
    full = sb.hs("GET", "/crm/v3/objects/0-101/8003?properties=" + props).json()["properties"]
    assert full["hs_latest_status"] == "refunded"
    assert full["hs_refunds_amount"] == full["hs_initial_amount"] == "375.00"
    part = sb.hs("GET", "/crm/v3/objects/0-101/8002?properties=" + props).json()["properties"]
    assert part["hs_refunds_amount"] != part["hs_initial_amount"]
    assert part["hs_fees_amount"] == "14.80"


def test_tax_rates(sb):
    r = sb.hs("GET", "/tax-rates/v1/tax-rates/1001")
    assert r.status == 200
    t = r.json()
    assert t["percentageRate"] == 7.25 and t["active"] is True
    assert set(t) >= {"id", "name", "label", "percentageRate", "active", "createdAt",
                      "updatedAt"}
    assert sb.hs("GET", "/tax-rates/v1/tax-rates/9").status == 404
    assert len(sb.hs("GET", "/tax-rates/v1/tax-rates").json()["results"]) == 2


# ---- account details: GET /account-info/v3/details (README "Account details") ------------
# Expected offsets come from Python's zoneinfo (the system tz database), not from the
# sandbox's built-in table, so the table and its daylight-saving rules are checked too.

ACCOUNT = "/account-info/v3/details"
TABLE_ZONES = ["US/Eastern", "America/New_York", "America/Detroit", "America/Toronto",
               "US/Central", "America/Chicago", "US/Mountain", "America/Denver",
               "US/Arizona", "America/Phoenix", "US/Pacific", "America/Los_Angeles",
               "US/Alaska", "America/Anchorage", "US/Hawaii", "Pacific/Honolulu", "UTC",
               "Etc/UTC", "Europe/London", "Europe/Paris", "Europe/Berlin"]
TOKEN_NEW = "pat-na1-account-details-0000-000000000000"


def zone_offsets(zone, ago_s=0):
    """The zone's (utcOffset, utcOffsetMilliseconds) ago_s seconds ago, as HubSpot writes
    them."""
    when = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=ago_s)
    mins = int(when.astimezone(zoneinfo.ZoneInfo(zone)).utcoffset().total_seconds()) // 60
    return "%s%02d:%02d" % ("-" if mins < 0 else "+", abs(mins) // 60, abs(mins) % 60), \
        mins * 60000


def account(sb, token=TOKEN1):
    r = sb.hs("GET", ACCOUNT, token=token)
    assert r.status == 200, r
    return r.json()


def assert_zone(details, zone):
    """details carry zone and its current offset (or the one of a few seconds ago, should
    a daylight-saving switch fall between the answer and this check)."""
    assert details["timeZone"] == zone
    got = (details["utcOffset"], details["utcOffsetMilliseconds"])
    assert got in (zone_offsets(zone), zone_offsets(zone, ago_s=5)), (zone, got)


def seed_portal(sb, portal_id, status=200, **keys):
    portal = {"portalId": portal_id, "tokens": [TOKEN_NEW]}
    portal.update(keys)
    r = sb.post("/_sandbox/seed", {"hubspot": {"portals": [portal]}})
    assert r.status == status, r
    return r


def test_account_details_per_portal(sb):
    d = account(sb)
    off, ms = d.pop("utcOffset"), d.pop("utcOffsetMilliseconds")
    assert d == {"portalId": int(PORTAL1), "accountType": "STANDARD",
                 "timeZone": "America/Los_Angeles", "companyCurrency": "USD",
                 "additionalCurrencies": [], "uiDomain": "app.hubspot.com",
                 "dataHostingLocation": "na1"}
    assert_zone(dict(d, utcOffset=off, utcOffsetMilliseconds=ms), "America/Los_Angeles")
    assert (off, ms) in (("-08:00", -8 * 3600000), ("-07:00", -7 * 3600000))
    # Another portal's token sees its own portal, never portal 1.
    d2 = account(sb, TOKEN2)
    assert d2["portalId"] == int(PORTAL2)
    assert_zone(d2, "America/New_York")
    assert d2["companyCurrency"] == "USD"
    # Same answer on the date-versioned family; keys in HubSpot's documented order.
    dated = sb.hs("GET", "/account-info/2026-03/details")
    assert dated.status == 200 and dated.json() == account(sb)
    assert list(dated.json()) == ["portalId", "accountType", "timeZone", "companyCurrency",
                                  "additionalCurrencies", "utcOffset", "utcOffsetMilliseconds",
                                  "uiDomain", "dataHostingLocation"]
    assert sb.requests(vendor="hubspot")[-1]["tenant"] == PORTAL1


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def test_seeded_objects_are_compact(sb):
    """20,000 seeded line items of six properties cost a few hundred bytes each
    (hubspot_props.c), not the ~2 KB of a json-c object each (the bench seeds 130,000
    objects), and read back as seeded."""
    def items(lo):
        return [{"id": str(i), "properties": {
            "name": "Product %d" % (i % 40), "hs_sku": "SKU-%d" % (i % 40),
            "hs_product_id": str(500000 + i % 40), "quantity": i % 12 + 1,
            "price": "12.50", "amount": None}} for i in range(lo, lo + 500)]
    seed_portal(sb, 555000222, objects={"line_items": items(9000000)})  # warm the allocator
    before = rss_kb(sb.proc.pid)
    for k in range(40):
        seed_portal(sb, 555000222, objects={"line_items": items(1000000 + 500 * k)})
    grown = rss_kb(sb.proc.pid) - before
    assert grown < 16 * 1024, "%d KB for 20,000 line items" % grown
    r = sb.get("/crm/v3/objects/line_items/1000013?properties=quantity,amount,hs_sku,nope",
               token=TOKEN_NEW)
    assert r.status == 200, r
    assert r.json()["properties"] == {
        "quantity": "6", "amount": None, "hs_sku": "SKU-13", "hs_object_id": "1000013",
        "createdate": "2024-01-01T00:00:00.000Z", "hs_lastmodifieddate": r.json()[
            "properties"]["hs_lastmodifieddate"]}


def test_account_details_defaults_and_seeded_zones(sb):
    seed_portal(sb, 555000111)
    d = account(sb, TOKEN_NEW)
    assert d["portalId"] == 555000111 and d["companyCurrency"] == "USD"
    assert_zone(d, "US/Eastern")  # HubSpot's example zone when none is seeded
    seed_portal(sb, 555000111, timeZone="Europe/Berlin", companyCurrency="EUR")
    d = account(sb, TOKEN_NEW)
    assert d["companyCurrency"] == "EUR"
    assert_zone(d, "Europe/Berlin")
    seed_portal(sb, 555000111, companyCurrency="GBP")  # merging keeps the zone
    assert_zone(account(sb, TOKEN_NEW), "Europe/Berlin")
    # A reset forgets seeded portals and restores the seed file's zones.
    sb.reset()
    assert sb.hs("GET", ACCOUNT, token=TOKEN_NEW).status == 401
    assert_zone(account(sb), "America/Los_Angeles")


def test_account_details_every_table_zone_matches_the_tz_database(sb):
    for i, zone in enumerate(TABLE_ZONES):
        seed_portal(sb, 556000000 + i, timeZone=zone)
        assert_zone(account(sb, TOKEN_NEW), zone)


def test_account_details_utc_offset_seed_key(sb):
    # A zone outside the sandbox's table needs its offset seeded; it then holds all year.
    r = seed_portal(sb, 557000001, status=400, timeZone="Asia/Kolkata")
    assert "utcOffset" in r.json()["error"]
    seed_portal(sb, 557000001, timeZone="Asia/Kolkata", utcOffset="+05:30")
    d = account(sb, TOKEN_NEW)
    assert (d["timeZone"], d["utcOffset"], d["utcOffsetMilliseconds"]) == \
        ("Asia/Kolkata", "+05:30", 19800000)
    # utcOffset alone overrides a table zone; a later timeZone alone drops the override.
    seed_portal(sb, 557000001, timeZone="America/Los_Angeles", utcOffset="-10:00")
    d = account(sb, TOKEN_NEW)
    assert (d["utcOffset"], d["utcOffsetMilliseconds"]) == ("-10:00", -36000000)
    seed_portal(sb, 557000001, timeZone="America/Los_Angeles")
    assert_zone(account(sb, TOKEN_NEW), "America/Los_Angeles")
    seed_portal(sb, 557000001, timeZone="UTC", utcOffset="+00:00")
    d = account(sb, TOKEN_NEW)
    assert (d["utcOffset"], d["utcOffsetMilliseconds"]) == ("+00:00", 0)


@pytest.mark.parametrize("keys", [
    {"timeZone": ""}, {"timeZone": "America/New York"}, {"timeZone": 5},
    {"timeZone": "A" * 64, "utcOffset": "+01:00"},
    {"companyCurrency": "usd"}, {"companyCurrency": "EURO"}, {"companyCurrency": "U5D"},
    {"companyCurrency": None}, {"timeZone": None}, {"utcOffset": None},
    {"utcOffset": "-8:00"}, {"utcOffset": "-08:60"}, {"utcOffset": "+14:30"},
    {"utcOffset": "08:00"}, {"utcOffset": -480},
])
def test_account_details_bad_seed_changes_nothing(sb, keys):
    before = account(sb)
    r = sb.post("/_sandbox/seed", {"hubspot": {"portals": [dict(portalId=int(PORTAL1), **keys)]}})
    assert r.status == 400, r
    after = account(sb)
    assert (after["timeZone"], after["companyCurrency"]) == \
        (before["timeZone"], before["companyCurrency"]) == ("America/Los_Angeles", "USD")


def test_account_details_auth_and_scopes(sb):
    b = assert_error(sb.call("GET", ACCOUNT), 401, "INVALID_AUTHENTICATION")
    assert b["message"] == AUTH_MSG
    assert_error(sb.hs("GET", ACCOUNT, token="pat-na1-nope"), 401, "INVALID_AUTHENTICATION")
    assert_error(sb.hs("GET", ACCOUNT, token=TOKEN_EXPIRED), 401, "EXPIRED_AUTHENTICATION")
    # No scope is required: a contacts-only token reads its portal's details.
    r = sb.hs("GET", ACCOUNT, token=TOKEN_CONTACTS_ONLY)
    assert r.status == 200 and r.json()["portalId"] == int(PORTAL1)
    # Counted like every authenticated route.
    assert r.headers["X-HubSpot-RateLimit-Max"] == "190"
    assert int(r.headers["X-HubSpot-RateLimit-Remaining"]) < 190
    assert sb.hs("POST", ACCOUNT, {}).status == 405
    assert sb.hs("GET", "/account-info/v3/details/x").status == 404
    assert sb.hs("GET", "/account-info/v2/details").status == 404


# ---- §1, §6 authentication and scopes ----------------------------------------------------

def test_missing_unknown_and_expired_tokens(sb):
    b = assert_error(sb.call("GET", "/crm/v3/objects/deals/1001"), 401,
                     "INVALID_AUTHENTICATION")
    assert b["message"] == AUTH_MSG
    assert_error(sb.call("GET", "/crm/v3/objects/deals/1001",
                         headers={"Authorization": "Basic Zm9vOmJhcg=="}), 401,
                 "INVALID_AUTHENTICATION")
    assert_error(sb.hs("GET", "/crm/v3/objects/deals/1001", token="pat-na1-nope"), 401,
                 "INVALID_AUTHENTICATION")
    b = assert_error(sb.hs("GET", "/crm/v3/objects/deals/1001", token=TOKEN_EXPIRED), 401,
                     "EXPIRED_AUTHENTICATION")
    assert "expired" in b["message"]


def test_tokens_are_per_portal(sb):
    assert sb.hs("GET", "/crm/v3/objects/deals/1001", token=TOKEN2).status == 404
    d = sb.hs("GET", "/crm/v3/objects/deals/1101?associations=contacts", token=TOKEN2).json()
    assert d["associations"]["contacts"]["results"][0]["id"] == "401"
    assert sb.hs("GET", "/crm/v3/objects/deals/1101").status == 404


def test_missing_scope_403(sb):
    assert sb.hs("GET", "/crm/v3/objects/contacts/301", token=TOKEN_CONTACTS_ONLY).status == 200
    b = assert_error(sb.hs("GET", "/crm/v3/objects/deals/1001", token=TOKEN_CONTACTS_ONLY), 403,
                     "MISSING_SCOPES")
    assert b["errors"][0]["context"]["requiredGranularScopes"] == ["crm.objects.deals.read"]
    assert b["errors"][0]["message"] == "One or more of the following scopes are required."
    r = sb.hs("POST", "/automation/v4/actions/callbacks/ap-102670506-56776413549-7-0/complete",
              {"outputFields": {"hs_execution_state": "SUCCESS"}}, token=TOKEN_CONTACTS_ONLY)
    assert_error(r, 403, "MISSING_SCOPES")


# ---- §5 rate limits ------------------------------------------------------------------------

def test_rate_limit_headers_and_ten_secondly_429(sb):
    sb.config(hubspot_rate_10s=5)
    remaining = []
    for _ in range(5):
        r = sb.hs("GET", "/crm/v3/objects/contacts/301")
        assert r.status == 200
        assert r.headers["X-HubSpot-RateLimit-Max"] == "5"
        assert r.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
        assert r.headers["X-HubSpot-RateLimit-Secondly"] == "1"
        assert "X-HubSpot-RateLimit-Secondly-Remaining" in r.headers
        assert r.headers["X-HubSpot-RateLimit-Daily"] == "1000000"
        remaining.append(int(r.headers["X-HubSpot-RateLimit-Remaining"]))
    assert remaining == [4, 3, 2, 1, 0]
    r = sb.hs("GET", "/crm/v3/objects/contacts/301")
    assert r.status == 429
    b = r.json()
    assert b["status"] == "error" and b["errorType"] == "RATE_LIMIT"
    assert b["policyName"] == "TEN_SECONDLY_ROLLING"
    assert b["message"] == "You have reached your ten_secondly_rolling limit."
    assert UUID_RE.match(b["correlationId"]) and "requestId" in b
    assert "Retry-After" not in r.headers  # §9 #11 default
    # the window is per portal
    assert sb.hs("GET", "/crm/v3/objects/contacts/401", token=TOKEN2).status == 200
    sb.config(hubspot={"retry_after_on_429": True})
    r = sb.hs("GET", "/crm/v3/objects/contacts/301")
    assert r.status == 429 and 1 <= int(r.headers["Retry-After"]) <= 10


def test_rolling_window_frees_slots(sb):
    sb.config(hubspot_rate_10s=2)
    assert sb.hs("GET", "/crm/v3/objects/contacts/301").status == 200
    assert sb.hs("GET", "/crm/v3/objects/contacts/301").status == 200
    assert sb.hs("GET", "/crm/v3/objects/contacts/301").status == 429
    # reset clears the window state; 0 means unlimited
    sb.config(hubspot_rate_10s=0)
    for _ in range(20):
        r = sb.hs("GET", "/crm/v3/objects/contacts/301")
        assert r.status == 200 and "X-HubSpot-RateLimit-Max" not in r.headers


def test_daily_limit(sb):
    sb.config(hubspot={"daily_limit": 2})
    for left in (1, 0):
        r = sb.hs("GET", "/crm/v3/objects/contacts/301")
        assert r.headers["X-HubSpot-RateLimit-Daily-Remaining"] == str(left)
    r = sb.hs("GET", "/crm/v3/objects/contacts/301")
    assert r.status == 429
    assert r.json()["policyName"] == "DAILY"
    assert r.json()["message"] == "You have reached your daily limit."


# ---- §3.5 callbacks ---------------------------------------------------------------------------

CB1 = "ap-102670506-56776413549-7-0"
CB2 = "ap-102670506-56776413550-7-0"


def callbacks(sb, portal=PORTAL1):
    return {c["callbackId"]: c
            for c in sb.state(portal=portal)["hubspot"]["portals"][portal]["callbacks"]}


def test_callback_complete_single(sb):
    r = sb.hs("POST", "/automation/v4/actions/callbacks/%s/complete" % CB1,
              {"outputFields": {"hs_execution_state": "SUCCESS", "qbo_invoice_id": "130"},
               "typedOutputs": {"x": 1}})
    assert r.status == 204 and r.body == b""
    c = callbacks(sb)[CB1]
    assert c["state"] == "COMPLETED" and c["via"] == "single" and c["completions"] == 1
    assert c["outputFields"] == {"hs_execution_state": "SUCCESS", "qbo_invoice_id": "130"}
    assert callbacks(sb)[CB2]["state"] == "PENDING"
    # §9 #8: completing twice -> 400 by default, switchable to 204
    again = sb.hs("POST", "/automation/v4/actions/callbacks/%s/complete" % CB1,
                  {"outputFields": {"hs_execution_state": "FAIL_CONTINUE"}})
    assert_error(again, 400, "VALIDATION_ERROR")
    sb.config(hubspot={"callback_repeat_status": 204})
    again = sb.hs("POST", "/automation/v4/actions/callbacks/%s/complete" % CB1,
                  {"outputFields": {"hs_execution_state": "FAIL_CONTINUE"}})
    assert again.status == 204
    c = callbacks(sb)[CB1]
    assert c["outputFields"]["hs_execution_state"] == "SUCCESS" and c["rejected"] == 2


def test_callback_errors(sb):
    path = "/automation/v4/actions/callbacks/%s/complete"
    assert_error(sb.hs("POST", path % "ap-unknown", {"outputFields": {
        "hs_execution_state": "SUCCESS"}}), 404, "OBJECT_NOT_FOUND")
    assert_error(sb.hs("POST", path % "ap-102670506-expired-7-0", {"outputFields": {
        "hs_execution_state": "SUCCESS"}}), 400, "VALIDATION_ERROR")
    for bad in ({"outputFields": {"hs_execution_state": "BLOCK"}}, {"outputFields": {}}, {},
                "nope"):
        assert_error(sb.hs("POST", path % CB1, bad), 400, "VALIDATION_ERROR")
    # another portal's callback is invisible
    assert_error(sb.hs("POST", path % "ap-243987001-1-1-0", {"outputFields": {
        "hs_execution_state": "SUCCESS"}}), 404, "OBJECT_NOT_FOUND")
    assert sb.hs("POST", path % "ap-243987001-1-1-0", {"outputFields": {
        "hs_execution_state": "SUCCESS"}}, token=TOKEN2).status == 204
    assert callbacks(sb)[CB1]["state"] == "PENDING"


def test_callback_accept_unknown_switch(sb):
    sb.config(hubspot={"callback_accept_unknown": True})
    r = sb.hs("POST", "/automation/v4/actions/callbacks/ap-new-1/complete",
              {"outputFields": {"hs_execution_state": "FAIL_CONTINUE", "errorCode": "X"}})
    assert r.status == 204
    assert callbacks(sb)["ap-new-1"]["outputFields"]["errorCode"] == "X"


def test_callback_batch_and_date_versioned(sb):
    body = {"inputs": [{"callbackId": CB1, "outputFields": {"hs_execution_state": "SUCCESS"}},
                       {"callbackId": CB2,
                        "outputFields": {"hs_execution_state": "FAIL_CONTINUE"}}]}
    assert sb.hs("POST", "/automation/actions/callbacks/2026-03/complete", body).status == 204
    cbs = callbacks(sb)
    assert cbs[CB1]["via"] == "batch" and cbs[CB2]["outputFields"]["hs_execution_state"] == \
        "FAIL_CONTINUE"
    sb.reset()
    # all-or-nothing: one unknown id -> 404 and nothing completed
    body["inputs"].append({"callbackId": "ap-nope",
                           "outputFields": {"hs_execution_state": "SUCCESS"}})
    assert sb.hs("POST", "/automation/v4/actions/callbacks/complete", body).status == 404
    assert callbacks(sb)[CB1]["state"] == "PENDING"
    assert sb.hs("POST", "/automation/v4/actions/callbacks/complete",
                 {"inputs": []}).status == 400
    r = sb.hs("POST", "/automation/actions/callbacks/2026-03/%s/complete" % CB1,
              {"outputFields": {"hs_execution_state": "SUCCESS"}})
    assert r.status == 204


# ---- §1 HubSpot OAuth -----------------------------------------------------------------------

OAUTH_FORM = ("grant_type=refresh_token&client_id=hsqb-client-id-1"
              "&client_secret=hsqb-client-secret-1"
              "&refresh_token=na1-rt-11111111-aaaa-4bbb-8ccc-dddddddddddd")
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def test_oauth_refresh_gives_working_token(sb):
    r = sb.post("/oauth/v1/token", OAUTH_FORM, headers=FORM)
    assert r.status == 200
    t = r.json()
    assert t["token_type"] == "bearer" and t["expires_in"] == 1800
    assert t["hub_id"] == int(PORTAL1)
    assert t["refresh_token"] == "na1-rt-11111111-aaaa-4bbb-8ccc-dddddddddddd"  # §9 #17
    assert 100 <= len(t["access_token"]) <= 300
    assert "automation" in t["scopes"]
    r = sb.hs("GET", "/crm/v3/objects/deals/1001", token=t["access_token"])
    assert r.status == 200
    assert "X-HubSpot-RateLimit-Daily" not in r.headers  # not sent for OAuth (§5)
    assert "X-HubSpot-RateLimit-Max" in r.headers
    t3 = sb.post("/oauth/v3/token", OAUTH_FORM, headers=FORM).json()
    assert t3["access_token"] != t["access_token"]
    assert sb.post("/oauth/v1/token?" + OAUTH_FORM).status == 200  # v1: query parameters


def test_oauth_errors_and_expiry(sb):
    bad = OAUTH_FORM.replace("na1-rt-1111", "na1-rt-0000")
    r = sb.post("/oauth/v1/token", bad, headers=FORM)
    assert r.status == 400 and r.json()["status"] == "BAD_REFRESH_TOKEN"
    r = sb.post("/oauth/v1/token", OAUTH_FORM.replace("client-id-1", "client-id-9"), headers=FORM)
    assert r.status == 400 and r.json()["status"] == "BAD_CLIENT_ID"
    r = sb.post("/oauth/v1/token", OAUTH_FORM.replace("secret-1", "secret-9"), headers=FORM)
    assert r.status == 400 and r.json()["status"] == "BAD_CLIENT_SECRET"
    r = sb.post("/oauth/v1/token", "grant_type=password", headers=FORM)
    assert r.status == 400 and r.json()["status"] == "BAD_GRANT_TYPE"
    code = ("grant_type=authorization_code&client_id=hsqb-client-id-1"
            "&client_secret=hsqb-client-secret-1&code=code-11111111&redirect_uri=http://x/")
    assert sb.post("/oauth/v3/token", code, headers=FORM).status == 200
    assert sb.post("/oauth/v3/token", code, headers=FORM).json()["status"] == "BAD_AUTH_CODE"
    sb.config(hubspot={"access_ttl_s": 1})
    t = sb.post("/oauth/v1/token", OAUTH_FORM, headers=FORM).json()
    assert t["expires_in"] == 1
    assert sb.hs("GET", "/crm/v3/objects/deals/1001", token=t["access_token"]).status == 200
    time.sleep(1.1)
    assert_error(sb.hs("GET", "/crm/v3/objects/deals/1001", token=t["access_token"]), 401,
                 "EXPIRED_AUTHENTICATION")


def test_oauth_token_scopes_apply(sb):
    t = sb.post("/oauth/v1/token", OAUTH_FORM, headers=FORM).json()["access_token"]
    assert sb.hs("GET", "/crm/v3/objects/quotes/2001", token=t).status == 200  # e-commerce
    assert sb.hs("GET", "/crm/v3/objects/companies/900", token=t).status == 403


def test_portal_recorded_as_tenant(sb):
    sb.hs("GET", "/crm/v3/objects/deals/1101", token=TOKEN2)
    assert sb.requests(vendor="hubspot")[-1]["tenant"] == PORTAL2


# ---- §4.1, §4.6 quote discounts, fees and taxes (issue 15) --------------------------------
# The pricing model and its choices are in README.md ("Quote pricing") and
# hubspot_pricing.c; hubspot_money() below is the same model in Python's Decimal.

PRICING_PROPS = ["hs_label", "hs_type", "hs_value", "hs_sort_order"]
SEED_QUOTE_TOTALS = {"2001": "2053.97", "2002": "261.17", "2003": "500.00", "2004": "663.85",
                     "2005": "514.30", "2006": "175.01", "2007": "349.34"}
SEED_DEAL_AMOUNTS = {"1001": "2053.97", "1002": "1455.00", "1007": "335.50", "1008": "120.00",
                     "1009": "562.59", "1010": "217.64", "1011": "300.00"}


def seed(sb, objects, tax_rates=None):
    portal = {"portalId": int(PORTAL1), "objects": objects}
    if tax_rates is not None:
        portal["tax_rates"] = tax_rates
    r = sb.post("/_sandbox/seed", {"hubspot": {"portals": [portal]}})
    assert r.status == 200, r
    return r


def props(sb, otype, oid, names):
    r = sb.hs("GET", "/crm/v3/objects/%s/%s?properties=%s" % (otype, oid, ",".join(names)))
    assert r.status == 200, r
    return r.json()["properties"]


def quote_amount(sb, qid):
    return props(sb, "quotes", qid, ["hs_quote_amount"])["hs_quote_amount"]


def priced(kind, ident, typ, value, **extra):
    return {"id": str(ident), "properties": dict(hs_label="%s %s" % (kind, ident), hs_type=typ,
                                                 hs_value=value, **extra)}


QUOTE_SEQ = itertools.count()


def seed_quote(sb, lines, discounts=(), fees=(), taxes=(), **qprops):
    """A new quote 29nnn with line items 79nnn0.. (amounts, or (amount, {props})) and the
    given (type, value) discounts 39nnn0.., fees 49nnn0.. and taxes 59nnn0.. (at most 10
    of each); returns its hs_quote_amount. Fresh ids every call: seeding only adds
    associations, so a re-used quote would keep earlier calls' discounts."""
    n = next(QUOTE_SEQ)
    qid = str(29000 + n)
    assoc = {"line_items": [], "discounts": [], "fees": [], "taxes": []}
    objects = {"line_items": [], "discounts": [], "fees": [], "taxes": []}
    for i, line in enumerate(lines):
        amount, extra = line if isinstance(line, tuple) else (line, {})
        lid = str(790000 + 10 * n + i)
        objects["line_items"].append({"id": lid, "properties": dict(name="L%d" % i,
                                                                    amount=amount, **extra)})
        assoc["line_items"].append(lid)
    for key, base, comps in (("discounts", 390000, discounts), ("fees", 490000, fees),
                             ("taxes", 590000, taxes)):
        for i, (typ, value) in enumerate(comps):
            objects[key].append(priced(key, base + 10 * n + i, typ, value))
            assoc[key].append(str(base + 10 * n + i))
    objects["quotes"] = [{"id": qid, "properties": dict(hs_title="Q " + qid, **qprops),
                          "associations": assoc}]
    seed(sb, objects)
    return quote_amount(sb, qid)


def test_pricing_types_by_name_singular_and_type_id(sb):
    for names, oid in ((("discounts", "discount", "0-84"), "3101"),
                       (("fees", "fee", "0-85"), "3201"), (("taxes", "tax", "0-86"), "3301")):
        bodies = [sb.hs("GET", "/crm/v3/objects/%s/%s" % (n, oid)).json() for n in names]
        bodies.append(sb.hs("GET", "/crm/objects/2026-03/%s/%s" % (names[1], oid)).json())
        assert all(b == bodies[0] for b in bodies), names
        p = bodies[0]["properties"]
        assert {"hs_label", "hs_type", "hs_value", "hs_object_id"} <= set(p)
    d = sb.hs("GET", "/crm/v3/objects/discounts/3102").json()["properties"]
    assert d["hs_type"] == "FIXED" and d["hs_value"] == "50.00" and d["hs_sort_order"] == "2"
    fee = props(sb, "fee", "3201", ["hs_duration", "hs_sort_order", "hs_label"])
    assert fee == {**fee, "hs_duration": None, "hs_sort_order": None,  # known, empty: null
                   "hs_label": "Card processing 3%"}
    listed = sb.hs("GET", "/crm/v3/objects/discounts?properties=hs_value").json()["results"]
    assert [x["id"] for x in listed] == ["3101", "3102", "3103", "3104"]
    assert sb.hs("GET", "/crm/v3/objects/taxes/3999").status == 404
    b = assert_error(sb.hs("GET", "/crm/v3/objects/tax/3301", token=TOKEN_CONTACTS_ONLY), 403,
                     "MISSING_SCOPES")
    assert b["errors"][0]["context"]["requiredGranularScopes"] == ["crm.objects.line_items.read"]


def test_pricing_batch_read_every_name(sb):
    for path, ids in (("discounts", ["3101", "3102"]), ("0-84", ["3103"]),
                      ("fee", ["3201", "3202", "3203"]), ("taxes", ["3301", "3302"])):
        r = sb.hs("POST", "/crm/v3/objects/%s/batch/read" % path,
                  {"properties": PRICING_PROPS, "inputs": [{"id": i} for i in ids]})
        assert r.status == 200, path
        got = {x["id"]: x["properties"] for x in r.json()["results"]}
        assert sorted(got) == ids
        assert all(set(PRICING_PROPS) <= set(p) for p in got.values())
    r = sb.hs("POST", "/crm/v3/objects/tax/batch/read",
              {"properties": PRICING_PROPS, "inputs": [{"id": "3301"}, {"id": "77"}]})
    assert r.status == 207
    e = r.json()["errors"][0]
    assert e["message"].startswith("Could not get some TAX objects") and \
        e["context"] == {"ids": ["77"]}


def test_quote_embeds_discounts_fees_and_taxes(sb):
    q = sb.hs("GET", "/crm/v3/objects/quotes/2004?properties=hs_quote_amount&associations="
              "contacts,line_items,discounts,fees,taxes").json()
    a = q["associations"]
    assert set(a) == {"contacts", "line items", "discounts", "fees"}  # no taxes: no key
    assert a["discounts"]["results"] == [{"id": "3101", "type": "quote_to_discount"}]
    assert a["fees"]["results"] == [{"id": "3201", "type": "quote_to_fee"},
                                    {"id": "3202", "type": "quote_to_fee"}]
    a = sb.hs("GET", "/crm/v3/objects/quotes/2005?associations=discount,fee,tax,0-86"
              ).json()["associations"]
    assert set(a) == {"discounts", "taxes"}  # singulars and ids asked, plural keys back
    assert [x["id"] for x in a["discounts"]["results"]] == ["3102", "3103"]
    assert a["taxes"]["results"] == [{"id": "3301", "type": "quote_to_tax"}]
    back = sb.hs("GET", "/crm/v3/objects/discounts/3104?associations=quotes").json()
    assert back["associations"]["quotes"]["results"] == [{"id": "2007",
                                                          "type": "discount_to_quote"}]
    listed = sb.hs("GET", "/crm/v3/objects/quotes?limit=100&associations=taxes").json()
    with_tax = {x["id"] for x in listed["results"] if "associations" in x}
    assert with_tax == {"2005", "2007"}


def test_pricing_v4_associations_type_ids_and_paging(sb):
    def types(path):
        b = sb.hs("GET", path).json()
        return [(x["toObjectId"], [t["typeId"] for t in x["associationTypes"]])
                for x in b["results"]]
    assert types("/crm/v4/objects/quotes/2005/associations/discounts") == [
        (3102, [362]), (3103, [362])]
    assert types("/crm/v4/objects/quotes/2004/associations/fee") == [(3201, [364]), (3202, [364])]
    assert types("/crm/v4/objects/0-14/2007/associations/0-86") == [(3302, [366])]
    assert types("/crm/v4/objects/discounts/3101/associations/quotes") == [(2004, [363])]
    assert types("/crm/v4/objects/fees/3203/associations/quotes") == [(2006, [365])]
    assert types("/crm/v4/objects/tax/3301/associations/quotes") == [(2005, [367])]
    p1 = sb.hs("GET", "/crm/v4/objects/quotes/2005/associations/discounts?limit=1").json()
    assert [x["toObjectId"] for x in p1["results"]] == [3102]
    p2 = sb.hs("GET", "/crm/v4/objects/quotes/2005/associations/discounts?limit=1&after="
               + p1["paging"]["next"]["after"]).json()
    assert [x["toObjectId"] for x in p2["results"]] == [3103] and "paging" not in p2
    r = sb.hs("POST", "/crm/v4/associations/quotes/taxes/batch/read",
              {"inputs": [{"id": "2005"}, {"id": "2004"}]})
    assert r.status == 207
    b = r.json()
    assert b["results"] == [{"from": {"id": "2005"}, "to": [
        {"toObjectId": 3301, "associationTypes": [
            {"category": "HUBSPOT_DEFINED", "typeId": 366, "label": None}]}]}]
    assert b["errors"][0]["subCategory"] == "crm.associations.NO_ASSOCIATIONS_FOUND"


def test_pricing_seed_from_either_side_and_type_checks(sb):
    seed(sb, {"quotes": [{"id": "2901", "properties": {"hs_title": "x"},
                          "associations": {"line_items": ["7001"]}}],
              "discounts": [{"id": "3901", "properties": {"hs_type": "FIXED", "hs_value": "1"},
                             "associations": {"quotes": ["2901"]}}],
              "fee": [{"id": "4901", "properties": {"hs_type": "FIXED", "hs_value": "2"},
                       "associations": {"0-14": [{"id": "2901", "types": [365]}]}}],
              "0-86": [{"id": "5901", "properties": {"hs_type": "FIXED", "hs_value": "3"}}]})
    seed(sb, {"quotes": [{"id": "2901", "properties": {"hs_title": "x"},
                          "associations": {"taxes": [{"id": "5901", "types": [366]}]}}]})
    a = sb.hs("GET", "/crm/v3/objects/quotes/2901?associations=discounts,fees,taxes"
              ).json()["associations"]
    assert {k: [(x["id"], x["type"]) for x in v["results"]] for k, v in a.items()} == {
        "discounts": [("3901", "quote_to_discount")], "fees": [("4901", "quote_to_fee")],
        "taxes": [("5901", "quote_to_tax")]}
    assert quote_amount(sb, "2901") == "1504.00"  # 1500.00 - 1 + 2 + 3
    bad = {"hubspot": {"portals": [{"portalId": int(PORTAL1), "objects": {"quotes": [
        {"id": "2902", "associations": {"discounts": [{"id": "3101", "types": [364]}]}}]}}]}}
    r = sb.post("/_sandbox/seed", bad)
    assert r.status == 400 and "type id not valid for quotes -> discounts" in r.json()["error"]
    bad["hubspot"]["portals"][0]["objects"]["quotes"][0]["associations"] = {"fees": ["4999"]}
    r = sb.post("/_sandbox/seed", bad)
    assert r.status == 400 and "fees 4999" in r.json()["error"]


def test_pricing_objects_in_state_dump(sb):
    objs = sb.state(portal=PORTAL1)["hubspot"]["portals"][PORTAL1]["objects"]
    assert [x["id"] for x in objs["fees"]] == ["3201", "3202", "3203"]
    assert objs["taxes"][1]["associations"] == {"quotes": ["2007"]}
    q = next(x for x in objs["quotes"] if x["id"] == "2004")
    assert q["associations"]["discounts"] == ["3101"]
    assert q["properties"]["hs_quote_amount"] == "663.85"  # the computed figure is stored


# ---- quote totals, deal amounts, line taxes ------------------------------------------------

def test_seeded_quote_totals_and_deal_amounts(sb):
    for qid, want in SEED_QUOTE_TOTALS.items():
        assert quote_amount(sb, qid) == want, qid
    for did, want in SEED_DEAL_AMOUNTS.items():
        assert props(sb, "deals", did, ["amount"])["amount"] == want, did
    # 2004: S 699.95; 10 % of S = 69.995 -> 70.00; A 629.95; 3 % of A = 18.8985 -> 18.90
    # plus 15.00; B = total 663.85.  2005: S 539.98, D = 50.00 + 27.00 (5 % of S = 26.999);
    # A 462.98; 1.5 % of A = 6.9447 -> 6.94; line tax 44.38 (8.875 % of 500 = 44.375).
    # 2007 (EUR): 12.5 % of 335.50 = 41.9375 -> 41.94; 19 % of 293.56 = 55.7764 -> 55.78.


def test_explicit_figures_are_kept(sb):
    # 2006: components give 150.00 + 25.00 = 175.00; HubSpot says 175.01 (seeded).
    assert quote_amount(sb, "2006") == "175.01"
    seed(sb, {"fees": [priced("fee", 3203, "FIXED", "99.00")]})
    assert quote_amount(sb, "2006") == "175.01"
    # 1001: seeded 2053.97 although its lines now carry 36.25 of tax
    assert props(sb, "line_items", "7003", ["hs_tax_amount"])["hs_tax_amount"] == "36.25"
    assert props(sb, "deals", "1001", ["amount"])["amount"] == "2053.97"
    assert seed_quote(sb, ["10.00"], hs_quote_amount=None) is None  # explicit null too
    seed(sb, {"deals": [{"id": "1901", "properties": {"dealname": "typed", "amount": "5.00"},
                         "associations": {"line_items": ["7001"]}}]})
    assert props(sb, "deals", "1901", ["amount"])["amount"] == "5.00"


def test_deal_amount_is_lines_plus_line_tax(sb):
    # 1009: 450.00 taxed at 7.25 % (32.625 -> 32.63) + 79.96 = 562.59
    assert props(sb, "deals", "1009", ["amount"])["amount"] == "562.59"
    seed(sb, {"deals": [{"id": "1902", "properties": {"dealname": "no lines"}}]})
    assert props(sb, "deals", "1902", ["amount"])["amount"] is None  # nothing to sum
    seed(sb, {"line_items": [{"id": "7950", "properties": {"amount": "12.34",
                                                           "hs_tax_amount": "1.11"}},
                             {"id": "7951", "properties": {"amount": "0.66"}}],
              "deals": [{"id": "1903", "properties": {"dealname": "two"},
                         "associations": {"line_items": ["7950", "7951"]}}]})
    assert props(sb, "deals", "1903", ["amount"])["amount"] == "14.11"


def test_line_item_tax_from_rate_group(sb):
    li = props(sb, "line_items", "7012", ["hs_tax_rate_group_id", "hs_tax_rate", "hs_tax_amount",
                                          "hs_position_on_quote"])
    assert li == {**li, "hs_tax_rate_group_id": "1001", "hs_tax_rate": "7.25",
                  "hs_tax_amount": "32.63", "hs_position_on_quote": None}
    assert props(sb, "line_items", "7014", ["hs_tax_amount"])["hs_tax_amount"] == "17.74"
    untaxed = props(sb, "line_items", "7013", ["hs_tax_rate", "hs_tax_amount"])
    assert untaxed["hs_tax_rate"] is None and untaxed["hs_tax_amount"] is None
    assert props(sb, "line_items", "7107", ["hs_position_on_quote"])["hs_position_on_quote"] == "1"
    seed(sb, {"line_items": [
        # explicit rate beats the group's seeded rate; explicit amount is kept as given
        {"id": "7960", "properties": {"amount": "100.00", "hs_tax_rate_group_id": "1001",
                                      "hs_tax_rate": "10"}},
        {"id": "7961", "properties": {"amount": "100.00", "hs_tax_rate_group_id": "1001",
                                      "hs_tax_amount": "1.23"}},
        # a group without a seeded rate, and a rate without a group: no tax
        {"id": "7962", "properties": {"amount": "100.00", "hs_tax_rate_group_id": "4242"}},
        {"id": "7963", "properties": {"amount": "100.00", "hs_tax_rate": "10"}}]})
    got = {i: props(sb, "line_items", i, ["hs_tax_rate", "hs_tax_amount"])
           for i in ("7960", "7961", "7962", "7963")}
    assert got["7960"] == {**got["7960"], "hs_tax_rate": "10", "hs_tax_amount": "10.00"}
    assert got["7961"] == {**got["7961"], "hs_tax_rate": "7.25", "hs_tax_amount": "1.23"}
    assert got["7962"]["hs_tax_amount"] is None and got["7963"]["hs_tax_amount"] is None
    # a tax rate seeded later (or changed) reprices the lines that use it; a JSON number
    # is read from its text (6.35 is no binary fraction): 450.00 x 6.35 % = 28.575 -> 28.58
    seed(sb, {}, tax_rates=[{"id": "1001", "name": "CA", "percentageRate": 6.35},
                            {"id": "4242", "name": "Local", "percentageRate": "0.5"}])
    li = props(sb, "line_items", "7012", ["hs_tax_rate", "hs_tax_amount"])
    assert (li["hs_tax_rate"], li["hs_tax_amount"]) == ("6.35", "28.58")
    assert props(sb, "deals", "1009", ["amount"])["amount"] == "558.54"
    assert props(sb, "line_items", "7962", ["hs_tax_amount"])["hs_tax_amount"] == "0.50"


@pytest.mark.parametrize("case,want", [
    # a percent discount of S: 50 % of 1.05 = 0.525 -> 0.53 (a tie rounds away from zero;
    # banker's rounding would give 0.52); 49.9 % = 0.52395 -> 0.52
    ({"lines": ["1.05"], "discounts": [("PERCENT", "50")]}, "0.52"),
    ({"lines": ["1.05"], "discounts": [("PERCENT", "49.9")]}, "0.53"),
    # a percent fee of A: 50 % of 0.05 = 0.025 -> 0.03; 49 % = 0.0245 -> 0.02
    ({"lines": ["0.05"], "fees": [("PERCENT", "50")]}, "0.08"),
    ({"lines": ["0.05"], "fees": [("PERCENT", "49")]}, "0.07"),
    # a percent tax of B: 7 % of 1.50 = 0.105 -> 0.11; 6.99 % = 0.10485 -> 0.10
    ({"lines": ["1.50"], "taxes": [("PERCENT", "7")]}, "1.61"),
    ({"lines": ["1.50"], "taxes": [("PERCENT", "6.99")]}, "1.60"),
    # a line's tax: 7 % of 1.50 -> 0.11, 6.99 % -> 0.10
    ({"lines": [("1.50", {"hs_tax_rate_group_id": "1", "hs_tax_rate": "7"})]}, "1.61"),
    ({"lines": [("1.50", {"hs_tax_rate_group_id": "1", "hs_tax_rate": "6.99"})]}, "1.60"),
    # below zero the tie goes away from zero too: A = -10.01, 50 % fee = -5.005 -> -5.01
    ({"lines": ["10.00"], "discounts": [("FIXED", "20.01")], "fees": [("PERCENT", "50")]},
     "-15.02"),
])
def test_percent_rounding_at_half_cents(sb, case, want):
    assert seed_quote(sb, case["lines"], case.get("discounts", ()), case.get("fees", ()),
                      case.get("taxes", ())) == want


def test_pricing_order_and_bases(sb):
    # every percent discount is of S (no compounding); sort order changes nothing
    assert seed_quote(sb, ["100.00"], [("PERCENT", "10"), ("PERCENT", "10")]) == "80.00"
    assert seed_quote(sb, ["100.00"], [("FIXED", "10"), ("PERCENT", "10")]) == "80.00"
    # fee on A (after discounts), tax on B (after fees), line tax added untaxed:
    # S 100, line tax 10, D 10 -> A 90, F 9 -> B 99, T 9.90: 99 + 9.90 + 10 = 118.90
    line = ("100.00", {"hs_tax_rate_group_id": "1", "hs_tax_rate": "10"})
    assert seed_quote(sb, [line], [("PERCENT", "10")], [("PERCENT", "10")],
                      [("PERCENT", "10")]) == "118.90"
    # FIXED values are money; several of each kind add up
    assert seed_quote(sb, ["10.00", "5.00"], [("FIXED", "1.50")], [("FIXED", "2"),
                      ("FIXED", "0.25")], [("FIXED", "3.10"), ("PERCENT", "0")]) == "18.85"
    assert seed_quote(sb, []) == "0.00"  # a quote without lines is worth nothing


def test_totals_follow_reseeds(sb):
    assert quote_amount(sb, "2004") == "663.85"
    # a new discount seeded from its own side: 663.85 - 5.00
    seed(sb, {"discounts": [{"id": "3950", "properties": {"hs_type": "FIXED", "hs_value": "5"},
                             "associations": {"quotes": ["2004"]}}]})
    assert quote_amount(sb, "2004") == "658.70"  # A 624.95, the 3 % fee 18.7485 -> 18.75
    # a changed line item
    seed(sb, {"line_items": [{"id": "7107", "properties": {"amount": "0.00"}}]})
    assert quote_amount(sb, "2004") == "566.05"  # S 600, D 65, A 535, F 16.05 + 15
    # an archived discount counts for nothing
    seed(sb, {"discounts": [{"id": "3950", "archived": True,
                             "properties": {"hs_type": "FIXED", "hs_value": "5"}}]})
    assert quote_amount(sb, "2004") == "571.20"
    # the quote itself re-seeded (associations are kept, seeding only adds)
    seed(sb, {"quotes": [{"id": "2004", "properties": {"hs_title": "again"}}]})
    assert quote_amount(sb, "2004") == "571.20"
    # a line item seeded with its associations reprices both its quote and its deal
    seed(sb, {"line_items": [{"id": "7980", "properties": {"amount": "10.00"},
                              "associations": {"quotes": ["2005"], "deals": ["1010"]}}]})
    assert quote_amount(sb, "2005") == "523.95"  # S 549.98: 5 % = 27.499 -> 27.50, ...
    assert props(sb, "deals", "1010", ["amount"])["amount"] == "227.64"
    # ... and given a figure, which wins from then on
    seed(sb, {"quotes": [{"id": "2004", "properties": {"hs_quote_amount": "1.00"}}]})
    assert quote_amount(sb, "2004") == "1.00"
    sb.reset()
    assert quote_amount(sb, "2004") == "663.85"


@pytest.mark.parametrize("discount", [
    ("PERCENT", "ten"), ("PERCENT", "-5"), ("PERCENT", "100.01"), ("PERCENT", ""),
    ("PERCENT", "1" + "0" * 40), ("FIXED", "1.005"), ("FIXED", "-1.00"), ("FIXED", "1,00"),
    ("FIXED", "1e3"), ("PERCENT", "1e1"), ("PERCENT", "+5"), ("PERCENT", "5%"),
    ("PERCENT", "0.0000000001"), ("FIXED", " 1.00"), ("FIXED", "99999999999999999999"),
    ("percent", "10"), ("AMOUNT", "10"), ("", "10"), (None, "10"), ("FIXED", None)])
def test_hostile_pricing_leaves_total_null(sb, discount):
    assert seed_quote(sb, ["10.00"], [discount]) is None
    assert sb.get("/_sandbox/health").status == 200
    assert quote_amount(sb, "2004") == "663.85"  # others unaffected


MAX_MONEY = "999999999999999.99"  # 10^17 - 1 cents, the most a money value may be


@pytest.mark.parametrize("line", [
    ("abc", {}), ("", {}), (None, {}), ("1.001", {}), ("1,00", {}), ("1e2", {}),
    ("10.00", {"hs_tax_amount": "x"}),
    ("10.00", {"hs_tax_rate_group_id": "1", "hs_tax_rate": "lots"}),
    ("10.00", {"hs_tax_rate_group_id": "1", "hs_tax_rate": "250"}),
    ("10.00", {"hs_tax_rate_group_id": "1", "hs_tax_rate": "-1"}),
    (MAX_MONEY, {"hs_tax_rate_group_id": "1", "hs_tax_rate": "100"})])  # line tax overflows
def test_hostile_lines_leave_totals_null(sb, line):
    assert seed_quote(sb, [line, "1.00"]) is None
    amount, extra = line
    seed(sb, {"line_items": [{"id": "7970", "properties": dict(amount=amount, **extra)},
                             {"id": "7971", "properties": {"amount": "1.00"}}],
              "deals": [{"id": "1904", "properties": {"dealname": "bad"},
                         "associations": {"line_items": ["7970", "7971"]}}]})
    assert props(sb, "deals", "1904", ["amount"])["amount"] is None
    assert quote_amount(sb, "2005") == "514.30"  # others unaffected


def test_sums_out_of_range_leave_totals_null(sb):
    assert seed_quote(sb, [MAX_MONEY]) == MAX_MONEY  # the largest figure is fine
    assert seed_quote(sb, [MAX_MONEY, "0.01"]) is None
    assert seed_quote(sb, [MAX_MONEY], fees=[("FIXED", "0.01")]) is None
    assert seed_quote(sb, [MAX_MONEY], taxes=[("PERCENT", "100")]) is None
    assert seed_quote(sb, [MAX_MONEY], [("PERCENT", "100")], [("PERCENT", "100")]) == "0.00"


def hubspot_money(lines, discounts, fees, taxes):
    """The pricing model in Decimal (ROUND_HALF_UP rounds ties away from zero)."""
    def pct(base, v):
        return (base * Decimal(v) / 100).quantize(CENT, rounding=ROUND_HALF_UP)

    def apply(comps, base):
        return sum((pct(base, v) if t == "PERCENT" else Decimal(v) for t, v in comps),
                   Decimal(0))
    s = sum((Decimal(a) for a, _ in lines), Decimal(0))
    tax = sum((pct(Decimal(a), r) for a, r in lines if r is not None), Decimal(0))
    a = s - apply(discounts, s)
    b = a + apply(fees, a)
    return "%.2f" % (b + apply(taxes, b) + tax)


def test_random_quotes_match_the_decimal_model(sb):
    rnd = random.Random(15)
    money = lambda hi: "%d.%02d" % (rnd.randrange(hi), rnd.randrange(100))
    rate = lambda: rnd.choice(["0", "5", "7.25", "8.875", "10", "12.5", "33.333", "100",
                               "%d.%d" % (rnd.randrange(30), rnd.randrange(1000))])
    comp = lambda: (("PERCENT", rate()) if rnd.random() < 0.6 else ("FIXED", money(50)))
    objects = {"line_items": [], "quotes": [], "discounts": [], "fees": [], "taxes": []}
    want, nid = {}, iter(range(100000, 200000))
    for q in range(150):
        qid, assoc = str(30000 + q), {k: [] for k in ("line_items", "discounts", "fees", "taxes")}
        lines = [(money(5000), rate() if rnd.random() < 0.3 else None)
                 for _ in range(rnd.randrange(6))]
        for amount, r in lines:
            lid = str(next(nid))
            p = {"amount": amount}
            if r is not None:
                p.update(hs_tax_rate_group_id="9", hs_tax_rate=r)
            objects["line_items"].append({"id": lid, "properties": p})
            assoc["line_items"].append(lid)
        comps = {k: [comp() for _ in range(rnd.randrange(3))]
                 for k in ("discounts", "fees", "taxes")}
        for k, cs in comps.items():
            for typ, value in cs:
                cid = str(next(nid))
                objects[k].append(priced(k, cid, typ, value))
                assoc[k].append(cid)
        objects["quotes"].append({"id": qid, "properties": {"hs_title": qid},
                                  "associations": assoc})
        want[qid] = hubspot_money(lines, comps["discounts"], comps["fees"], comps["taxes"])
    seed(sb, objects)
    ids = sorted(want)
    for i in range(0, len(ids), 100):
        r = sb.hs("POST", "/crm/v3/objects/quotes/batch/read",
                  {"properties": ["hs_quote_amount"], "inputs": [{"id": x} for x in ids[i:i + 100]]})
        for x in r.json()["results"]:
            assert x["properties"]["hs_quote_amount"] == want[x["id"]], x["id"]


# ---- addresses and currencies (issue 15) ------------------------------------------------------

ADDRESS = ["address", "city", "state", "zip", "country", "company"]


def test_contact_and_company_addresses(sb):
    states = {c: props(sb, "contacts", c, ADDRESS)["state"] for c in ("307", "308", "309")}
    assert states == {"307": "CA", "308": "NY", "309": "TX"}
    c = props(sb, "contacts", "307", ADDRESS)
    assert c == {**c, "address": "350 Mission St", "city": "San Francisco", "zip": "94105",
                 "country": "United States", "company": "Golden Gate Widgets Inc"}
    assert props(sb, "contacts", "302", ADDRESS)["zip"] is None  # known, empty
    co = props(sb, "companies", "901", ["name", "address", "city", "state", "zip", "country"])
    assert co == {**co, "name": "Empire Widgets Holdings Inc", "address": "500 W 33rd St",
                  "state": "NY", "zip": "10001"}
    assert props(sb, "companies", "900", ["address", "zip"]) == {
        **props(sb, "companies", "900", ["address", "zip"]), "address": None, "zip": None}
    a = sb.hs("GET", "/crm/v3/objects/deals/1009?associations=contacts,line_items,companies"
              ).json()["associations"]
    assert [x["id"] for x in a["contacts"]["results"]] == ["307"]
    assert {(x["id"], x["type"]) for x in a["companies"]["results"]} == {
        ("901", "deal_to_company"), ("901", "deal_to_company_unlabeled")}


def test_foreign_currency_deals_and_quote(sb):
    for did, cur, contact, lines in (("1007", "EUR", "301", ["7009", "7010"]),
                                     ("1008", "GBP", "306", ["7011"])):
        d = sb.hs("GET", "/crm/v3/objects/deals/%s?properties=deal_currency_code,amount"
                  "&associations=contacts,line_items" % did).json()
        assert d["properties"]["deal_currency_code"] == cur
        assert [x["id"] for x in d["associations"]["contacts"]["results"]] == [contact]
        assert [x["id"] for x in d["associations"]["line items"]["results"]] == lines
        for li in lines:
            assert props(sb, "line_items", li, ["hs_line_item_currency_code"]) \
                ["hs_line_item_currency_code"] == cur
    q = props(sb, "quotes", "2007", ["hs_currency", "hs_quote_amount"])
    assert q["hs_currency"] == "EUR" and q["hs_quote_amount"] == "349.34"
