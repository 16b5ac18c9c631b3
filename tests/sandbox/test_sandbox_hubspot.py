"""HubSpot emulation in hsqb-sandbox, checked against ../shared/reference/hubspot-api.md.

Each test names the reference section it pins down; a drift from the reference fails it.
"""
import re
import time

from conftest import (PORTAL1, PORTAL2, TOKEN1, TOKEN2, TOKEN_CONTACTS_ONLY, TOKEN_EXPIRED)

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
ISO_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
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
    assert [x["id"] for x in a["deals"]["results"]] == ["1001"]
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
    assert seen == ["301", "302", "303", "304", "305", "306"]
    b = sb.hs("GET", "/crm/v3/objects/line_items").json()  # default limit 10
    assert len(b["results"]) == 10 and "paging" in b
    b = sb.hs("GET", "/crm/v3/objects/line_items?limit=1000").json()  # max 100
    assert len(b["results"]) == 17 and "paging" not in b
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
