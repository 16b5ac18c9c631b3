"""QuickBooks Online emulation of hsqb-sandbox, checked against
../shared/reference/quickbooks-api.md (section numbers below refer to it).

Run: /usr/bin/python3 -m pytest tests/sandbox/test_sandbox_qbo.py
"""
import concurrent.futures
import json
import time

from qbo_helpers import (AST1, AST_RATES, AT, CA1, EXCHANGE_RATES, MC1, META_RE, RT, TID_RE,
                         TIME_RE, US1, US2, fault, get, plus_days, post, qbo, query, refresh,
                         state, today)

INVOICE = {"CustomerRef": {"value": "3"},
           "Line": [{"DetailType": "SalesItemLineDetail", "Amount": 300.00,
                     "Description": "Consulting",
                     "SalesItemLineDetail": {"ItemRef": {"value": "3"}, "Qty": 2,
                                             "UnitPrice": 150.00}}]}


def make_invoice(sb, realm=US1, **fields):
    body = json.loads(json.dumps(INVOICE))
    body.update(fields)
    r = post(sb, realm, "invoice", body)
    assert r.status == 200, r
    return r.json()["Invoice"]


def test_create_and_full_update_ignore_server_fields_of_the_body(sb):
    """The entity is built on the request's parsed body (no copy): the server fields it
    carries are still replaced, and what is stored is what was answered."""
    inv = make_invoice(sb, SyncToken="9", domain="XYZ",
                       MetaData={"CreateTime": "2001-01-01T00:00:00-08:00"})
    assert inv["SyncToken"] == "0" and inv["domain"] == "QBO" and inv["sparse"] is False
    assert inv["MetaData"]["CreateTime"] != "2001-01-01T00:00:00-08:00"
    assert get(sb, US1, "invoice/" + inv["Id"]).json()["Invoice"] == inv
    body = json.loads(json.dumps(INVOICE))
    body.update(Id=inv["Id"], SyncToken="0", PrivateNote="full update", domain="XYZ")
    r = post(sb, US1, "invoice", body)
    assert r.status == 200, r
    upd = r.json()["Invoice"]
    assert (upd["Id"], upd["SyncToken"], upd["domain"]) == (inv["Id"], "1", "QBO")
    assert upd["PrivateNote"] == "full update"
    assert upd["MetaData"]["CreateTime"] == inv["MetaData"]["CreateTime"]
    assert get(sb, US1, "invoice/" + inv["Id"]).json()["Invoice"] == upd


# ---- transport: §1, §2, §13.2 ---------------------------------------------------------

def test_read_has_envelope_headers_and_company_offset(sb):
    r = get(sb, US1, "customer/1", minorversion="75")
    assert r.status == 200
    assert r.headers["Content-Type"] == "application/json;charset=utf-8"
    assert TID_RE.match(r.headers["intuit_tid"])
    body = r.json()
    assert TIME_RE.match(body["time"]) and body["time"].endswith("-07:00")
    c = body["Customer"]
    assert c["Id"] == "1" and c["SyncToken"] == "0"
    assert c["domain"] == "QBO" and c["sparse"] is False
    assert META_RE.match(c["MetaData"]["CreateTime"])
    assert c["DisplayName"] == "Amy's Bird Sanctuary"


def test_intuit_tid_on_every_kind_of_response(sb):
    sb.config(qbo_rate_min=3)
    responses = [
        get(sb, US1, "customer/1"),                       # 200
        get(sb, US1, "customer/999999"),                  # 400 610
        get(sb, US1, "customer/1", token="x" * 40),       # 401
        get(sb, US1, "customer/1/5"),                     # 400 unsupported
        get(sb, US1, "customer/1"),                       # 429 (4th of 3/min)
    ]
    assert [r.status for r in responses] == [200, 400, 401, 400, 429]
    tids = [r.headers.get("intuit_tid") for r in responses]
    assert all(t and TID_RE.match(t) for t in tids), tids
    assert len(set(tids)) == len(tids)


def test_fault_rule_responses_still_carry_intuit_tid(sb):
    """A fault rule's answer stands in for Intuit's, so it has intuit_tid like every real
    one (regression: fault-injected QBO and token-endpoint responses had none)."""
    path = "/v3/company/%s/customer/1" % US1
    sb.fault(path=path, status=500, times=1, body={"Fault": {"type": "SystemFault"}})
    r = get(sb, US1, "customer/1")
    assert r.status == 500 and TID_RE.match(r.headers.get("intuit_tid") or ""), r.headers
    sb.fault(path=path, status=503, phase="after", times=1, body="unavailable")
    r = get(sb, US1, "customer/1")
    assert r.status == 503 and TID_RE.match(r.headers.get("intuit_tid") or ""), r.headers
    sb.fault(path=path, status=500, times=1, headers={"intuit_tid": "1-rule-own-tid"})
    assert get(sb, US1, "customer/1").headers["intuit_tid"] == "1-rule-own-tid"
    sb.fault(path="/oauth2/v1/tokens/bearer", status=500, times=1)
    r = refresh(sb, RT[US1])
    assert r.status == 500 and TID_RE.match(r.headers.get("intuit_tid") or ""), r.headers
    assert get(sb, US1, "customer/1").status == 200  # every rule fired once


def test_minorversion_format_and_unknown_params_are_accepted(sb):
    for params in ({"minorversion": "75"}, {"minorversion": "4"}, {"minorversion": "999"},
                   {"format": "json", "include": "enhancedAllCustomFields", "foo": "bar"}):
        r = get(sb, US1, "customer/1", **params)
        assert r.status == 200, (params, r)


def test_json_needs_accept_header_or_format_json(sb):
    r = get(sb, US1, "customer/1", accept=None)
    assert r.status == 406 and TID_RE.match(r.headers["intuit_tid"])
    assert get(sb, US1, "customer/1", accept=None, format="json").status == 200
    assert get(sb, US1, "customer/1", accept="application/json, text/plain").status == 200
    sb.config(qbo={"require_accept_json": False})
    assert get(sb, US1, "customer/1", accept=None).status == 200


def test_unknown_subpath_is_400_unsupported_operation(sb):
    r = get(sb, US1, "customer/1/5")
    st, code, _, msg, detail = fault(r)
    assert (st, code, msg) == (400, "500", "Unsupported Operation")
    assert "/v3/company/%s/customer/1/5" % US1 in detail
    assert fault(get(sb, US1, "Customer/1"))[1] == "500"  # URIs are case sensitive
    assert fault(post(sb, US1, "widget", {}))[1] == "500"


def test_read_errors_object_not_found_and_invalid_id(sb):
    st, code, element, msg, _ = fault(get(sb, US1, "invoice/424242"))
    assert (st, code, msg) == (400, "610", "Object Not Found")
    st, code, element, msg, detail = fault(get(sb, US1, "invoice/abc"))
    assert (st, code, element) == (400, "2030", "Id")
    assert detail == "Id should be a valid number. Supplied value:abc"


def test_companyinfo_and_preferences(sb):
    ci = get(sb, US1, "companyinfo/" + US1).json()["CompanyInfo"]
    assert ci["Country"] == "US" and ci["CompanyAddr"]["Country"] == "USA"
    ca = get(sb, CA1, "companyinfo/" + CA1).json()["CompanyInfo"]
    assert ca["Country"] == "CA"
    assert fault(get(sb, US1, "companyinfo/123"))[1] == "610"
    prefs = get(sb, US1, "preferences").json()["Preferences"]
    assert prefs["CurrencyPrefs"]["HomeCurrency"]["value"] == "USD"
    assert get(sb, CA1, "preferences").json()["Preferences"]["CurrencyPrefs"][
        "HomeCurrency"]["value"] == "CAD"
    q = query(sb, US1, "select * from CompanyInfo").json()
    assert q["QueryResponse"]["CompanyInfo"][0]["CompanyName"] == "Sandbox Company US 1"


# ---- auth: §7 401, §13.12 ------------------------------------------------------------

def test_401_body_and_www_authenticate(sb):
    for token in ("", "x" * 40, AT[US2]):  # none, unknown, another realm's token
        r = get(sb, US1, "customer/1", token=token)
        assert r.status == 401, token
        assert r.headers["WWW-Authenticate"] == 'Bearer realm="Intuit", error="invalid_token"'
        assert r.headers["Content-Type"] == "application/json"
        b = r.json()
        assert set(b) == {"warnings", "intuitObject", "fault", "report", "queryResponse",
                          "batchItemResponse", "attachableResponse", "syncErrorResponse",
                          "requestId", "time", "status", "cdcresponse"}
        err = b["fault"]["error"][0]
        assert err["code"] == "3200" and err["element"] is None
        assert err["message"] == "message=AuthenticationFailed; errorCode=003200; statusCode=401"
        assert b["fault"]["type"] == "AUTHENTICATION"
        assert isinstance(b["time"], int) and b["time"] > 1.6e12


def test_401_xml_variant(sb):
    sb.config(qbo={"auth_fault_body": "xml"})
    r = get(sb, US1, "customer/1", token="x" * 40)
    assert r.status == 401 and r.body.startswith(b'<Fault type="AuthenticationFault">')
    assert b'<Error code="100">' in r.body


def test_expired_access_token_gives_401_token_expired(sb):
    from qbo_helpers import RT, refresh
    sb.config(access_ttl_s=1)
    tok = refresh(sb, RT[US1]).json()["access_token"]
    assert get(sb, US1, "customer/1", token=tok).status == 200
    time.sleep(1.2)
    r = get(sb, US1, "customer/1", token=tok)
    assert r.status == 401
    assert r.json()["fault"]["error"][0]["detail"].startswith("Token expired: ")


# ---- throttling: §8, §12 #4 #6 #7 --------------------------------------------------

THROTTLE_XML_TAIL = (
    b' xmlns="http://schema.intuit.com/finance/v3"><Fault type="SERVICE"><Error code="3001">'
    b"<Message>message=ThrottleExceeded; errorCode=003001; statusCode=429</Message>"
    b"<Detail>The request limit was reached.  Try again later</Detail></Error></Fault>"
    b"</IntuitResponse>")


def test_per_minute_limit_is_per_realm_with_xml_body(sb):
    sb.config(qbo_rate_min=5)
    statuses = [get(sb, US1, "customer/1").status for _ in range(5)]
    assert statuses == [200] * 5
    r = get(sb, US1, "customer/1")
    assert r.status == 429
    assert r.body.endswith(THROTTLE_XML_TAIL)
    assert b"<IntuitResponse time=\"" in r.body
    assert "Retry-After" not in r.headers
    assert get(sb, US2, "customer/1").status == 200  # other realm unaffected
    assert state(sb, US1)["stats"]["throttled"] == 1


def test_throttle_json_body_and_retry_after_options(sb):
    sb.config(qbo_rate_min=1, qbo={"throttle_body": "json", "retry_after_s": 7})
    assert get(sb, US1, "customer/1").status == 200
    r = get(sb, US1, "customer/1")
    assert r.status == 429 and r.headers["Retry-After"] == "7"
    assert fault(r)[1] == "3001" and r.json()["Fault"]["type"] == "SERVICE"


def test_per_second_limit_option(sb):
    sb.config(qbo={"per_second": 2})
    statuses = [get(sb, US1, "customer/1").status for _ in range(3)]
    assert statuses == [200, 200, 429]
    time.sleep(1.05)
    assert get(sb, US1, "customer/1").status == 200


def test_concurrent_limit_counts_requests_waiting_for_latency(sb):
    sb.config(qbo_concurrent=2, latency_ms=600)

    def one(realm):
        return get(sb, realm, "customer/1").status

    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        futs = [pool.submit(one, US1) for _ in range(5)] + [pool.submit(one, US2)]
        statuses = [f.result() for f in futs]
    assert sorted(statuses[:5]) == [200, 200, 429, 429, 429], statuses
    assert statuses[5] == 200  # per realm
    sb.config(latency_ms=0)
    assert get(sb, US1, "customer/1").status == 200  # slots were released
    assert state(sb, US1)["stats"]["inflight"] == 0


# ---- requestid: §3, §12 #1 #2 #3 -----------------------------------------------------

def test_requestid_replays_same_status_and_body_without_creating_twice(sb):
    body = {"DisplayName": "Replay Customer"}
    first = post(sb, US1, "customer", body, requestid="rq-0001")
    assert first.status == 200
    again = post(sb, US1, "customer", body, requestid="rq-0001")
    assert again.status == 200 and again.body == first.body  # byte-exact, same "time"
    names = [c["DisplayName"] for c in state(sb, US1)["Customer"]]
    assert names.count("Replay Customer") == 1
    # a new id executes again (-> duplicate name), and that 400 is replayed too
    dup = post(sb, US1, "customer", body, requestid="rq-0002")
    assert fault(dup)[:2] == (400, "6240")
    assert post(sb, US1, "customer", body, requestid="rq-0002").body == dup.body
    # ids are per realm
    other = post(sb, US2, "customer", body, requestid="rq-0001")
    assert other.status == 200 and other.body != first.body
    assert state(sb, US1)["stats"]["replayed"] == 2


def test_requestid_replay_survives_token_refresh_and_other_body(sb):
    inv = post(sb, US1, "invoice", INVOICE, requestid="inv-77")
    changed = dict(INVOICE, PrivateNote="retry")
    again = post(sb, US1, "invoice", changed, requestid="inv-77")
    assert again.body == inv.body
    assert len(state(sb, US1)["Invoice"]) == 2  # seeded 130 + one


def test_requestid_mismatch_can_be_rejected(sb):
    sb.config(qbo={"requestid_mismatch": "reject"})
    assert post(sb, US1, "invoice", INVOICE, requestid="m-1").status == 200
    assert post(sb, US1, "invoice", INVOICE, requestid="m-1").status == 200
    r = post(sb, US1, "invoice", dict(INVOICE, PrivateNote="x"), requestid="m-1")
    assert r.status == 400


def test_requestid_retention_is_configurable(sb):
    sb.config(requestid_retention_s=1)
    a = post(sb, US1, "invoice", INVOICE, requestid="ret-1").json()["Invoice"]["Id"]
    assert post(sb, US1, "invoice", INVOICE, requestid="ret-1").json()["Invoice"]["Id"] == a
    time.sleep(1.2)
    b = post(sb, US1, "invoice", INVOICE, requestid="ret-1").json()["Invoice"]["Id"]
    assert b != a


def test_requestid_longer_than_50_is_rejected(sb):
    assert post(sb, US1, "invoice", INVOICE, requestid="r" * 50).status == 200
    st, code, element, _, _ = fault(post(sb, US1, "invoice", INVOICE, requestid="r" * 51))
    assert (st, code) == (400, "2020")


# ---- customers and names: §6.1, §12 #14 -----------------------------------------------

def test_customer_create_defaults(sb):
    r = post(sb, US1, "customer", {"DisplayName": "Doe5, Jane"})
    assert r.status == 200
    c = r.json()["Customer"]
    assert c["Taxable"] is True and c["Job"] is False and c["BillWithParent"] is False
    assert c["Balance"] == 0 and c["BalanceWithJobs"] == 0
    assert c["CurrencyRef"] == {"value": "USD", "name": "United States Dollar"}
    assert c["PreferredDeliveryMethod"] == "Print"
    assert c["FullyQualifiedName"] == c["PrintOnCheckName"] == "Doe5, Jane"
    assert c["Active"] is True and c["SyncToken"] == "0" and isinstance(c["Id"], str)
    assert c["MetaData"]["CreateTime"].endswith("-07:00")
    ca = post(sb, CA1, "customer", {"DisplayName": "Jane"}).json()["Customer"]
    assert ca["CurrencyRef"]["value"] == "CAD"


def test_duplicate_display_name_6240_recorded_body(sb):
    r = post(sb, US1, "customer", {"DisplayName": "Ada Lovelace",
                                   "PrimaryEmailAddr": {"Address": "ada@example.com"}})
    assert r.status == 400
    assert r.headers["Content-Type"] == "application/json"
    b = r.json()
    assert b["Fault"] == {"Error": [{"Message": "Duplicate Name Exists Error",
                                     "Detail": "The name supplied already exists. : null",
                                     "code": "6240"}],
                          "type": "ValidationFault"}
    assert TIME_RE.match(b["time"])


def test_display_name_unique_across_customer_vendor_employee(sb):
    assert fault(post(sb, US1, "customer", {"DisplayName": "Books by Bessie"}))[1] == "6240"
    assert fault(post(sb, US1, "customer", {"DisplayName": "Emily Platt"}))[1] == "6240"
    assert fault(post(sb, US1, "vendor", {"DisplayName": "Amy's Bird Sanctuary"}))[1] == "6240"
    assert fault(post(sb, US1, "customer", {"DisplayName": "ada lovelace"}))[1] == "6240"
    assert post(sb, US2, "vendor", {"DisplayName": "Books by Bessie 2"}).status == 200
    # inactive records keep their name
    assert fault(post(sb, US1, "customer", {"DisplayName": "Old Customer"}))[1] == "6240"
    sb.config(qbo={"names_case_insensitive": False})
    assert post(sb, US1, "customer", {"DisplayName": "ada lovelace"}).status == 200
    assert fault(post(sb, US1, "customer", {"DisplayName": "Ada Lovelace"}))[1] == "6240"


def test_no_name_6080_and_derived_display_name(sb):
    st, code, _, msg, _ = fault(post(sb, US1, "customer",
                                     {"PrimaryEmailAddr": {"Address": "x@example.com"}}))
    assert (st, code, msg) == (400, "6080", "No Name Provided")
    c = post(sb, US1, "customer", {"GivenName": "Hedy", "FamilyName": "Lamarr"}).json()
    assert c["Customer"]["DisplayName"] == "Hedy Lamarr"
    # named like HubSpot contact 306 (deal 1005), but another person: still a duplicate
    assert fault(post(sb, US1, "customer", {"GivenName": "Grace", "FamilyName": "Hopper"}))[1] \
        == "6240"


def test_name_rules_length_and_colon(sb):
    assert post(sb, US1, "customer", {"DisplayName": "x" * 500}).status == 200
    assert fault(post(sb, US1, "customer", {"DisplayName": "y" * 501}))[1] == "2010"
    assert fault(post(sb, US1, "customer", {"DisplayName": "a:b"}))[0] == 400


def test_unknown_property_is_2010(sb):
    st, code, _, msg, detail = fault(post(sb, US1, "customer",
                                          {"DisplayName": "Z", "BadJson": 1}))
    assert (st, code) == (400, "2010")
    assert 'Unrecognized field "BadJson"' in detail
    sb.config(qbo={"strict_fields": False})
    assert post(sb, US1, "customer", {"DisplayName": "Z", "BadJson": 1}).status == 200


# ---- SyncToken, updates, 5010: §5 -----------------------------------------------------

def test_update_bumps_synctoken_and_stale_token_is_5010(sb):
    c = get(sb, US1, "customer/4").json()["Customer"]
    upd = post(sb, US1, "customer", {"Id": "4", "SyncToken": c["SyncToken"], "sparse": True,
                                     "CompanyName": "Dukes Inc"}, operation="update")
    assert upd.status == 200
    u = upd.json()["Customer"]
    assert u["SyncToken"] == "1" and u["CompanyName"] == "Dukes Inc"
    assert u["DisplayName"] == "Dukes Basketball Camp"  # sparse keeps the rest
    assert u["MetaData"]["CreateTime"] == c["MetaData"]["CreateTime"]
    stale = post(sb, US1, "customer", {"Id": "4", "SyncToken": "0", "sparse": True,
                                       "CompanyName": "Late"}, operation="update")
    st, code, element, msg, detail = fault(stale)
    assert (st, code, element, msg) == (400, "5010", "", "Stale Object Error")
    assert detail.startswith("Stale Object Error : You and ")
    assert get(sb, US1, "customer/4").json()["Customer"]["CompanyName"] == "Dukes Inc"


def test_plain_post_with_id_and_synctoken_updates(sb):
    r = post(sb, US1, "customer", {"Id": "4", "SyncToken": "0",
                                   "DisplayName": "Dukes Basketball Camp", "Notes": "full"})
    assert r.status == 200 and r.json()["Customer"]["SyncToken"] == "1"
    assert "PrimaryEmailAddr" not in r.json()["Customer"]  # full update replaces
    assert fault(post(sb, US1, "customer", {"Id": "4", "DisplayName": "X"},
                      operation="update"))[1] == "2020"  # no SyncToken


def test_deactivate_instead_of_delete(sb):
    st, code, _, _, _ = fault(post(sb, US1, "customer", {"Id": "4", "SyncToken": "0"},
                                   operation="delete"))
    assert (st, code) == (400, "500")
    r = post(sb, US1, "customer", {"Id": "4", "SyncToken": "0", "sparse": True,
                                   "Active": False})
    assert r.json()["Customer"]["Active"] is False
    assert query(sb, US1, "select * from Customer where Id = '4'").json()["QueryResponse"] == {}
    q = query(sb, US1, "select * from Customer where Id = '4' and Active = false").json()
    assert q["QueryResponse"]["Customer"][0]["Id"] == "4"


# ---- items: §6.2 ------------------------------------------------------------------------

def test_item_account_rules(sb):
    st, code, element, _, _ = fault(post(sb, US1, "item", {"Name": "Svc", "Type": "Service"}))
    assert (st, code, element) == (400, "2020", "IncomeAccountRef")
    assert fault(post(sb, US1, "item", {"Name": "NonInv", "Type": "NonInventory"}))[2] == \
        "IncomeAccountRef"
    st, code, element, _, _ = fault(post(sb, US1, "item", {
        "Name": "Svc", "Type": "Service", "IncomeAccountRef": {"value": "9999"}}))
    assert (code, element) == ("2500", "IncomeAccountRef")
    assert fault(post(sb, US1, "item", {"Name": "Inv", "Type": "Inventory",
                                        "IncomeAccountRef": {"value": "79"}}))[1] == "2020"
    assert fault(post(sb, US1, "item", {"Name": "NoType",
                                        "IncomeAccountRef": {"value": "79"}}))[2] == "Type"
    assert fault(post(sb, US1, "item", {"Name": "Bad", "Type": "Gizmo"}))[1] == "2170"
    assert post(sb, US1, "item", {"Name": "Folder", "Type": "Category"}).status == 200
    r = post(sb, US1, "item", {"Name": "Consulting Hour 2", "Type": "Service",
                               "IncomeAccountRef": {"value": "79"}, "UnitPrice": 150,
                               "Sku": "HS-PROD-42", "Taxable": False})
    assert r.status == 200
    it = r.json()["Item"]
    assert it["IncomeAccountRef"] == {"value": "79", "name": "Sales"}
    assert it["FullyQualifiedName"] == "Consulting Hour 2" and it["Active"] is True
    assert it["TrackQtyOnHand"] is False


def test_item_name_unique_and_limited(sb):
    assert fault(post(sb, US1, "item", {"Name": "widget", "Type": "Service",
                                        "IncomeAccountRef": {"value": "79"}}))[1] == "6240"
    assert fault(post(sb, US1, "item", {"Name": "n" * 101, "Type": "Service",
                                        "IncomeAccountRef": {"value": "79"}}))[1] == "2010"


# ---- invoices: §6.3, §12 #9 #19 ---------------------------------------------------------

def test_invoice_minimal_create_defaults(sb):
    r = post(sb, US1, "invoice", {"Line": [{"Amount": 100.0, "DetailType": "SalesItemLineDetail",
                                            "SalesItemLineDetail": {"ItemRef": {"value": "1"}}}],
                                  "CustomerRef": {"value": "1"}})
    assert r.status == 200
    inv = r.json()["Invoice"]
    assert inv["DocNumber"] == "1037"
    assert inv["TxnDate"] == today(US1).isoformat()
    assert inv["DueDate"] == plus_days(inv["TxnDate"], 30)  # company default term Net 30
    assert inv["CustomerRef"] == {"value": "1", "name": "Amy's Bird Sanctuary"}
    lines = inv["Line"]
    assert lines[0]["Id"] == "1" and lines[0]["LineNum"] == 1
    assert lines[0]["SalesItemLineDetail"]["TaxCodeRef"] == {"value": "NON"}
    assert lines[0]["SalesItemLineDetail"]["ItemRef"]["name"] == "Services"
    assert lines[-1] == {"Amount": 100.0, "DetailType": "SubTotalLineDetail",
                         "SubTotalLineDetail": {}}
    assert b'"Amount":100.00' in r.body  # money keeps two decimals
    assert inv["TotalAmt"] == 100.0 and inv["Balance"] == 100.0
    assert inv["LinkedTxn"] == [] and inv["TxnTaxDetail"] == {"TotalTax": 0}
    assert inv["BillAddr"]["City"] == "Bayshore"  # from the customer
    assert inv["CurrencyRef"]["value"] == "USD"
    assert make_invoice(sb)["DocNumber"] == "1038"


def test_invoice_nested_deeper_than_the_text_writer_is_stored_whole(sb):
    # A stored transaction is written back as text by sb_json_tree, which nests 16 deep;
    # a deeper member (the request may nest 32) is written by json-c instead, unchanged.
    deep = "x"
    for _ in range(20):
        deep = {"d": deep}
    r = post(sb, US1, "invoice", {"Line": [{"Amount": 10.0, "DetailType": "SalesItemLineDetail",
                                            "SalesItemLineDetail": {"ItemRef": {"value": "1"}},
                                            "Deep": deep}],
                                  "CustomerRef": {"value": "1"}})
    assert r.status == 200
    created = r.json()["Invoice"]
    assert created["Line"][0]["Deep"] == deep
    read = get(sb, US1, "invoice/" + created["Id"])
    assert read.status == 200 and read.json()["Invoice"] == created


def test_invoice_due_date_precedence(sb):
    txn = "2026-01-31"
    assert make_invoice(sb, TxnDate=txn, SalesTermRef={"value": "2"})["DueDate"] == "2026-02-15"
    inv = make_invoice(sb, TxnDate=txn, SalesTermRef={"value": "1"})
    assert inv["DueDate"] == txn and inv["SalesTermRef"]["name"] == "Due on receipt"
    assert make_invoice(sb, TxnDate=txn, SalesTermRef={"value": "3"},
                        DueDate="2026-12-24")["DueDate"] == "2026-12-24"
    # customer 2 has Net 15
    assert make_invoice(sb, TxnDate=txn, CustomerRef={"value": "2"})["DueDate"] == "2026-02-15"
    assert make_invoice(sb, TxnDate=txn)["DueDate"] == "2026-03-02"
    assert fault(post(sb, US1, "invoice", dict(INVOICE, SalesTermRef={"value": "99"})))[1] \
        == "2500"


def test_line_amount_must_equal_qty_times_unit_price_6070(sb):
    def line(amount, qty, price):
        return dict(INVOICE, Line=[{"DetailType": "SalesItemLineDetail", "Amount": amount,
                                    "SalesItemLineDetail": {"ItemRef": {"value": "1"},
                                                            "Qty": qty, "UnitPrice": price}}])
    st, code, _, msg, detail = fault(post(sb, US1, "invoice", line(300.01, 2, 150)))
    assert (st, code) == (400, "6070")
    assert detail == "Amount is not equal to UnitPrice * Qty. Supplied value:300.01"
    # exact decimals: 3 x 0.1 is 0.30 (0.30000000000000004 in binary floating point)
    assert post(sb, US1, "invoice", line(0.30, 3, 0.1)).status == 200
    assert post(sb, US1, "invoice", line(50.00, 1.5, 33.33)).status == 200  # 49.995 -> 50.00
    assert fault(post(sb, US1, "invoice", line(49.99, 1.5, 33.33)))[1] == "6070"
    assert post(sb, US1, "invoice", line(1234567.89, 0.5, 2469135.78)).status == 200
    # no Amount: computed
    body = line(0, 2.5, 19.99)
    del body["Line"][0]["Amount"]
    assert make_invoice(sb, Line=body["Line"])["TotalAmt"] == 49.98


def test_invoice_required_fields_and_references(sb):
    assert fault(post(sb, US1, "invoice", {"Line": INVOICE["Line"]}))[2] == "CustomerRef"
    assert fault(post(sb, US1, "invoice", {"CustomerRef": {"value": "1"}}))[2] == "Line"
    assert fault(post(sb, US1, "invoice", dict(INVOICE, CustomerRef={"value": "777"})))[1] \
        == "2500"
    assert fault(post(sb, US1, "invoice", dict(INVOICE, CustomerRef={"value": "5"})))[1] \
        == "610"  # inactive customer
    bad_item = dict(INVOICE, Line=[{"DetailType": "SalesItemLineDetail", "Amount": 5,
                                    "SalesItemLineDetail": {"ItemRef": {"value": "5"}}}])
    assert fault(post(sb, US1, "invoice", bad_item))[1] == "610"  # inactive item


def test_duplicate_docnumber_6140_and_bypass(sb):
    make_invoice(sb, DocNumber="HS-DEAL-9001")
    st, code, _, msg, detail = fault(post(sb, US1, "invoice", dict(INVOICE,
                                                                  DocNumber="HS-DEAL-9001")))
    assert (st, code) == (400, "6140")
    assert "DocNumber=HS-DEAL-9001" in detail
    r = post(sb, US1, "invoice", dict(INVOICE, DocNumber="HS-DEAL-9001"),
             include="allowduplicatedocnum")
    assert r.status == 200
    assert post(sb, US1, "estimate", dict(INVOICE, DocNumber="HS-DEAL-9001")).status == 200
    assert fault(post(sb, US1, "invoice", dict(INVOICE, DocNumber="D" * 22)))[1] == "6000"
    q = query(sb, US1, "select * from Invoice where DocNumber = 'HS-DEAL-9001'").json()
    assert q["QueryResponse"]["maxResults"] == 2


def test_discount_and_tax_lines_change_total(sb):
    inv = make_invoice(sb, Line=INVOICE["Line"] + [
        {"DetailType": "DiscountLineDetail", "Amount": 0,
         "DiscountLineDetail": {"PercentBased": True, "DiscountPercent": 10}}],
        TxnTaxDetail={"TotalTax": 12.5})
    assert inv["TotalAmt"] == 282.5 and inv["Balance"] == 282.5
    assert inv["Line"][1]["Amount"] == 30.0 and "Id" not in inv["Line"][1]
    assert inv["Line"][-1]["Amount"] == 300.0


def test_canadian_company_needs_tax_codes_and_types_its_numbers(sb):
    body = json.loads(json.dumps(INVOICE))
    body["CustomerRef"] = {"value": "1"}
    st, code, element, _, _ = fault(post(sb, CA1, "invoice", body))
    assert (st, code, element) == (400, "6000", "TaxCodeRef")
    body["Line"][0]["SalesItemLineDetail"]["TaxCodeRef"] = {"value": "5"}
    inv = post(sb, CA1, "invoice", body).json()["Invoice"]
    assert "DocNumber" not in inv  # CustomTxnNumbers: no automatic numbers
    assert inv["CurrencyRef"] == {"value": "CAD", "name": "Canadian Dollar"}


def test_estimate_and_sales_receipt_defaults(sb):
    est = post(sb, US1, "estimate", INVOICE).json()["Estimate"]
    assert est["TxnStatus"] == "Pending" and "DueDate" not in est and "Balance" not in est
    sr = post(sb, US1, "salesreceipt", dict(INVOICE)).json()["SalesReceipt"]
    assert sr["DepositToAccountRef"] == {"value": "4", "name": "Undeposited Funds"}
    assert sr["Balance"] == 0 and sr["TotalAmt"] == 300.0
    sr2 = post(sb, US1, "salesreceipt", dict(INVOICE, DepositToAccountRef={"value": "35"},
                                              PaymentMethodRef={"value": "1"}))
    assert sr2.json()["SalesReceipt"]["DepositToAccountRef"]["name"] == "Checking"


def test_refund_receipt_requires_deposit_account(sb):
    st, code, element, msg, _ = fault(post(sb, US1, "refundreceipt", INVOICE))
    assert (st, code, element) == (400, "2020", "DepositToAccountRef")
    assert msg == "Required param missing, need to supply the required value for the API"
    assert fault(post(sb, US1, "refundreceipt",
                      dict(INVOICE, DepositToAccountRef={"value": "79"})))[1] == "6000"
    r = post(sb, US1, "refundreceipt", dict(INVOICE, DepositToAccountRef={"value": "35"}))
    assert r.status == 200
    rr = r.json()["RefundReceipt"]
    assert rr["RemainingCredit"] == 0 and rr["TotalAmt"] == 300.0
    assert rr["DepositToAccountRef"] == {"value": "35", "name": "Checking"}


# ---- payments: §6.5, §12 #18 -----------------------------------------------------------

def pay(sb, inv, amount, total=None, customer="3"):
    return post(sb, US1, "payment", {
        "CustomerRef": {"value": customer}, "TotalAmt": total if total is not None else amount,
        "Line": [{"Amount": amount, "LinkedTxn": [{"TxnId": inv["Id"], "TxnType": "Invoice"}]}]})


def test_payment_reduces_invoice_balance_and_links_both_ways(sb):
    inv = make_invoice(sb)
    r = pay(sb, inv, 100)
    assert r.status == 200
    p = r.json()["Payment"]
    assert p["UnappliedAmt"] == 0 and p["DepositToAccountRef"]["value"] == "4"
    assert p["Line"][0]["LinkedTxn"] == [{"TxnId": inv["Id"], "TxnType": "Invoice"}]
    after = get(sb, US1, "invoice/" + inv["Id"]).json()["Invoice"]
    assert after["Balance"] == 200.0 and after["TotalAmt"] == 300.0
    assert after["LinkedTxn"] == [{"TxnId": p["Id"], "TxnType": "Payment"}]
    assert after["SyncToken"] == "1"
    p2 = pay(sb, inv, 200, total=250).json()["Payment"]
    assert p2["UnappliedAmt"] == 50.0
    assert get(sb, US1, "invoice/" + inv["Id"]).json()["Invoice"]["Balance"] == 0
    # deleting a payment restores the balance
    d = post(sb, US1, "payment", {"Id": p["Id"], "SyncToken": "0"}, operation="delete")
    assert d.json()["Payment"] == {"domain": "QBO", "status": "Deleted", "Id": p["Id"]}
    back = get(sb, US1, "invoice/" + inv["Id"]).json()["Invoice"]
    assert back["Balance"] == 100.0 and len(back["LinkedTxn"]) == 1


def test_payment_update_and_void_move_the_balance_back(sb):
    inv = make_invoice(sb)
    p = pay(sb, inv, 100).json()["Payment"]
    upd = post(sb, US1, "payment", {
        "Id": p["Id"], "SyncToken": "0", "sparse": True, "TotalAmt": 40,
        "Line": [{"Amount": 40, "LinkedTxn": [{"TxnId": inv["Id"], "TxnType": "Invoice"}]}]},
        operation="update")
    assert upd.status == 200 and upd.json()["Payment"]["SyncToken"] == "1"
    after = get(sb, US1, "invoice/" + inv["Id"]).json()["Invoice"]
    assert after["Balance"] == 260.0 and after["SyncToken"] == "2"
    void = post(sb, US1, "payment", {"Id": p["Id"], "SyncToken": "1"}, operation="update",
                include="void")
    assert void.json()["Payment"]["TotalAmt"] == 0
    after = get(sb, US1, "invoice/" + inv["Id"]).json()["Invoice"]
    assert after["Balance"] == 300.0 and after["LinkedTxn"] == []


def entity_text(resp, name):
    """The bytes of the entity in an answer {"<name>": ..., "time": ...}, as sent."""
    head, body = b'{"%s":' % name.encode(), resp.body
    assert body.startswith(head), resp
    return body[len(head):body.rindex(b',"time":')]


def test_stored_documents_answer_byte_for_byte(sb):
    """Transactions are stored as text (qbo_store.c): reads, queries and requestid replays
    answer exactly the bytes of the create, and a payment's change of the invoice is kept
    while the create's replay still answers what the create answered."""
    body = dict(INVOICE, PrivateNote='caf\u00e9 / "quoted" \\ 1.10', DocNumber="BB-1")
    created = post(sb, US1, "invoice", body, requestid="bb-1")
    assert created.status == 200, created
    inv = created.json()["Invoice"]
    text = entity_text(created, "Invoice")
    assert entity_text(get(sb, US1, "invoice/" + inv["Id"]), "Invoice") == text
    q = query(sb, US1, "select * from Invoice where DocNumber = 'BB-1'")
    assert q.json()["QueryResponse"]["Invoice"] == [inv]
    q = query(sb, US1, "select * from Invoice where DocNumber = 'bb-1' and CustomerRef = '3'")
    assert q.json()["QueryResponse"]["Invoice"] == [inv]  # the text pre-filter ignores case
    assert "Invoice" not in query(sb, US1, "select * from Invoice where DocNumber = 'BB-2'").json()[
        "QueryResponse"]
    assert post(sb, US1, "invoice", body, requestid="bb-1").body == created.body
    assert pay(sb, inv, 100).status == 200
    after = get(sb, US1, "invoice/" + inv["Id"]).json()["Invoice"]
    assert after["Balance"] == 200.0 and after["SyncToken"] == "1"
    assert post(sb, US1, "invoice", body, requestid="bb-1").body == created.body
    assert state(sb, US1)["Invoice"][-1] == after


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def test_stored_documents_are_compact(sb):
    """1,000 ten-line invoices created with requestids cost the sandbox a few KB each
    (their text), not the ~40 KB of json-c trees they once did (the bench's 20,000
    documents took 1 GB)."""
    lines = [dict(INVOICE["Line"][0], Description="line %d of a bench-sized invoice" % i)
             for i in range(10)]
    body = json.dumps(dict(INVOICE, Line=lines, PrivateNote="compact")).encode()
    sb.config(qbo_rate_min=0)
    for i in range(50):  # warm the allocator
        assert post(sb, US1, "invoice", body, requestid="warm-%d" % i).status == 200
    before = rss_kb(sb.proc.pid)
    for i in range(1000):
        assert post(sb, US1, "invoice", body, requestid="compact-%d" % i).status == 200
    grown = rss_kb(sb.proc.pid) - before
    assert grown < 12 * 1000, "%d KB for 1,000 invoices" % grown


def test_payment_rules(sb):
    inv = make_invoice(sb)
    assert fault(pay(sb, inv, 300.01))[1] == "6000"  # more than the open balance
    assert fault(pay(sb, inv, 100, total=50))[1] == "6000"  # applied > received
    assert fault(pay(sb, inv, 10, customer="1"))[1] == "6000"  # another customer's invoice
    assert fault(post(sb, US1, "payment", {"CustomerRef": {"value": "3"}}))[2] == "TotalAmt"
    assert fault(post(sb, US1, "payment", {"TotalAmt": 5}))[2] == "CustomerRef"
    assert get(sb, US1, "invoice/" + inv["Id"]).json()["Invoice"]["Balance"] == 300.0


def test_void_invoice_keeps_record_with_zero_amounts(sb):
    inv = make_invoice(sb)
    r = post(sb, US1, "invoice", {"Id": inv["Id"], "SyncToken": "0"}, operation="void")
    v = r.json()["Invoice"]
    assert v["TotalAmt"] == 0 and v["Balance"] == 0 and v["PrivateNote"] == "Voided"
    assert v["SyncToken"] == "1"
    d = post(sb, US1, "invoice", {"Id": inv["Id"], "SyncToken": "1"}, operation="delete")
    assert d.json()["Invoice"]["status"] == "Deleted"
    assert fault(get(sb, US1, "invoice/" + inv["Id"]))[1] == "610"


# ---- purchases (expenses): §6.6 ----------------------------------------------------------

EXPENSE = {"PaymentType": "Cash", "AccountRef": {"value": "35"}, "TxnDate": "2026-03-02",
           "EntityRef": {"value": "57", "type": "Vendor"},
           "Line": [{"DetailType": "AccountBasedExpenseLineDetail", "Amount": 42.50,
                     "Description": "Processing fee",
                     "AccountBasedExpenseLineDetail": {"AccountRef": {"value": "58"}}}]}


def test_purchase_rules_and_defaults(sb):
    r = post(sb, US1, "purchase", EXPENSE)
    assert r.status == 200
    p = r.json()["Purchase"]
    assert p["TotalAmt"] == 42.5 and p["EntityRef"] == {"value": "57", "name": "Stripe",
                                                         "type": "Vendor"}
    d = p["Line"][0]["AccountBasedExpenseLineDetail"]
    assert d["BillableStatus"] == "NotBillable" and d["TaxCodeRef"] == {"value": "NON"}
    assert d["AccountRef"]["name"] == "Bank Charges" and p["Line"][0]["Id"] == "1"
    assert fault(post(sb, US1, "purchase", {k: v for k, v in EXPENSE.items()
                                            if k != "PaymentType"}))[2] == "PaymentType"
    assert fault(post(sb, US1, "purchase", dict(EXPENSE, PaymentType="Expense")))[1] == "2170"
    assert fault(post(sb, US1, "purchase", {k: v for k, v in EXPENSE.items()
                                            if k != "AccountRef"}))[2] == "AccountRef"
    assert fault(post(sb, US1, "purchase", dict(EXPENSE, PaymentType="CreditCard")))[1] == "6000"
    assert post(sb, US1, "purchase", dict(EXPENSE, PaymentType="CreditCard",
                                          AccountRef={"value": "41"})).status == 200
    assert fault(post(sb, US1, "purchase", dict(EXPENSE, Line=[])))[2] == "Line"
    no_acct = dict(EXPENSE, Line=[{"DetailType": "AccountBasedExpenseLineDetail", "Amount": 1,
                                   "AccountBasedExpenseLineDetail": {}}])
    assert fault(post(sb, US1, "purchase", no_acct))[2] == "AccountRef"


def test_vendor_create_for_expenses(sb):
    v = post(sb, US1, "vendor", {"DisplayName": "Acme Payments"}).json()["Vendor"]
    assert v["Vendor1099"] is False and v["Active"] is True
    assert post(sb, US1, "purchase", dict(EXPENSE, EntityRef={"value": v["Id"]})).status == 200


# ---- queries: §4 ------------------------------------------------------------------------

def rows(resp, entity):
    assert resp.status == 200, resp
    return resp.json()["QueryResponse"].get(entity, [])


def test_query_escaped_quote_and_ampersand(sb):
    got = rows(query(sb, US1, "SELECT * FROM Customer WHERE DisplayName = 'Amy\\'s Bird Sanctuary'"),
               "Customer")
    assert [c["Id"] for c in got] == ["1"]
    # the statement exactly as recorded, %26 and all
    r = sb.call("GET", "/v3/company/%s/query?query=select%%20*%%20from%%20Customer%%20where%%20"
                "DisplayName%%20=%%20%%27Robertson%%20%%26%%20Associates%%27" % US1,
                headers={"Accept": "application/json"}, token=AT[US1])
    assert [c["Id"] for c in rows(r, "Customer")] == ["2"]
    r = sb.call("GET", "/v3/company/%s/query?query=SELECT%%20*%%20FROM%%20Customer%%20WHERE"
                "%%20DisplayName%%20=%%20%%27Amy%%5C%%27s%%20Bird%%20Sanctuary%%27" % US1,
                headers={"Accept": "application/json"}, token=AT[US1])
    assert rows(r, "Customer")[0]["DisplayName"] == "Amy's Bird Sanctuary"


def test_query_in_like_and_case_insensitive_keywords(sb):
    got = rows(query(sb, US1, "select * from Item where Sku in ('CONS-HR', 'WID-001', 'nope')"),
               "Item")
    assert [i["Id"] for i in got] == ["3", "4"]
    got = rows(query(sb, US1, "SeLeCt * FrOm Customer wHeRe DisplayName LIKE '%Bird%'"),
               "Customer")
    assert [c["Id"] for c in got] == ["1"]
    got = rows(query(sb, US1, "select * from Customer where DisplayName like 'd%'"), "Customer")
    assert [c["Id"] for c in got] == ["4"]
    got = rows(query(sb, US1, "select * from Customer where Id in ('3', '1', '99')"), "Customer")
    assert [c["Id"] for c in got] == ["1", "3"]
    got = rows(query(sb, US1, "select * from Account where AccountType = 'Bank' "
                     "and Name = 'Checking'"), "Account")
    assert [a["Id"] for a in got] == ["35"]


def test_query_post_application_text_and_form_encoded(sb):
    stmt = "select * from Term where Name = 'Net 30'"
    for body in (stmt, stmt.replace(" ", "+").replace("'", "%27"),
                 stmt.replace(" ", "%20")):
        r = qbo(sb, "POST", US1, "query", body=body,
                headers={"Content-Type": "application/text"})
        got = rows(r, "Term")
        assert got[0]["Id"] == "3" and got[0]["DueDays"] == 30 and got[0]["Type"] == "STANDARD"


def test_query_empty_result_and_count(sb):
    r = query(sb, US1, "select * from Customer where DisplayName = 'Nobody Here'")
    b = r.json()
    assert b["QueryResponse"] == {} and TIME_RE.match(b["time"])
    assert query(sb, US1, "select count(*) from Customer").json()["QueryResponse"] == \
        {"totalCount": 5}  # the inactive one is hidden
    assert query(sb, US1, "SELECT COUNT(*) FROM Customer WHERE Active IN (true, false)").json()[
        "QueryResponse"] == {"totalCount": 6}
    assert query(sb, US1, "select count(*) from Purchase").json()["QueryResponse"] == \
        {"totalCount": 0}


def seed_customers(sb, realm, n, prefix="Pager"):
    doc = {"qbo": {"realms": [{"realm_id": realm, "Customer": [
        {"DisplayName": "%s %04d" % (prefix, i)} for i in range(n)]}]}}
    r = sb.post("/_sandbox/seed", doc)
    assert r.status in (200, 201), r


def test_query_paging_in_either_order_and_defaults(sb):
    seed_customers(sb, US2, 105)
    ids = [c["Id"] for c in rows(query(sb, US2, "select * from Customer MAXRESULTS 1000"),
                                 "Customer")]
    assert len(ids) == 105 + 6 - 1  # seeded 6, one inactive
    first = query(sb, US2, "select * from Customer").json()["QueryResponse"]
    assert first["startPosition"] == 1 and first["maxResults"] == 100  # default page
    a = query(sb, US2, "select * from Customer STARTPOSITION 11 MAXRESULTS 5").json()
    b = query(sb, US2, "select * from Customer maxresults 5 startposition 11").json()
    assert a["QueryResponse"] == b["QueryResponse"]
    assert [c["Id"] for c in a["QueryResponse"]["Customer"]] == ids[10:15]
    assert a["QueryResponse"]["startPosition"] == 11 and a["QueryResponse"]["maxResults"] == 5
    last = query(sb, US2, "select * from Customer startPosition 101 maxResults 100").json()
    assert last["QueryResponse"]["maxResults"] == len(ids) - 100  # rows returned
    past = query(sb, US2, "select * from Customer STARTPOSITION 500").json()
    assert past["QueryResponse"] == {}


def test_query_max_results_1000(sb):
    seed_customers(sb, US2, 1001)
    r = query(sb, US2, "select * from Customer MAXRESULTS 1000")
    assert len(rows(r, "Customer")) == 1000
    st, code, _, msg, detail = fault(query(sb, US2, "select * from Customer MAXRESULTS 1001"))
    assert (st, code, msg) == (400, "4001", "Invalid query")
    assert detail == "QueryValidationError: value 1001 is too large. Max allowed value is 1000"


def test_query_orderby(sb):
    got = rows(query(sb, US1, "select * from Customer orderby DisplayName desc"), "Customer")
    names = [c["DisplayName"] for c in got]
    assert names == sorted(names, key=str.lower, reverse=True)


def test_query_literals_beyond_latin1_are_a_lexical_error(sb):
    """Field reports (quickbooks-ruby #362/#309, QuickBooks-V3-PHP-SDK #395/#397): the
    parser refuses ł ’ “ ” – in a literal; Latin-1 (é, ñ, ö) passes."""
    for lit in ("\u0141ukasz", "O\u2019Brien", "\u201cDeluxe\u201d", "Pro \u2013 Annual", "\U0001F600"):
        st, code, _, msg, detail = fault(query(sb, US1, "select * from Customer where "
                                               "DisplayName = '%s'" % lit))
        assert (st, code, msg) == (400, "4000", "Error parsing query"), lit
        assert "LEXICAL ERROR" in detail, detail
    assert rows(query(sb, US1, "select * from Customer where DisplayName = 'Ren\u00e9e'"),
                "Customer") == []
    sb.config(qbo={"query_lexical_error_beyond_latin1": False})
    assert rows(query(sb, US1, "select * from Customer where DisplayName = 'O\u2019Brien'"),
                "Customer") == []


def test_query_validation_and_parse_errors(sb):
    st, code, _, msg, detail = fault(query(sb, US1, "select * from Custmoer"))
    assert (st, code, msg) == (400, "4001", "Invalid query")
    assert detail == "QueryValidationError: invalid context declaration: Custmoer"
    # entity names in any case, as real traffic shows QBO answering (issue 16); the strict
    # reading of the old reference stays an option
    assert len(rows(query(sb, US1, "select * from customer"), "Customer")) == 5
    assert len(rows(query(sb, US1, "SELECT * FROM CUSTOMER"), "Customer")) == 5
    sb.config(qbo={"query_entity_case_insensitive": False})
    assert fault(query(sb, US1, "select * from customer"))[1] == "4001"
    sb.config(qbo={"query_entity_case_insensitive": True})
    # PrimaryEmailAddr is not queryable (§12 #11); nor AcctNum
    st, code, _, _, detail = fault(query(sb, US1, "select * from Customer where "
                                     "PrimaryEmailAddr = 'Birds@Intuit.com'"))
    assert (st, code) == (400, "4001") and "PrimaryEmailAddr" in detail
    assert fault(query(sb, US1, "select * from Account where AcctNum = '1010'"))[1] == "4001"
    assert fault(query(sb, US1, "select * from Invoice where Id > '3'"))[1] == "4001"
    # OR, projections and broken literals are parse errors
    for bad in ("select * from Customer where Id = '1' or Id = '2'",
                "select Id, DisplayName from Customer",
                "select * from Customer where DisplayName = 'unterminated",
                "delete from Customer", ""):
        assert fault(query(sb, US1, bad))[:2] in ((400, "4000"), (400, "4001")), bad


def test_query_transactions_by_docnumber_date_customer_and_time(sb):
    inv = make_invoice(sb, DocNumber="HS-DEAL-7", TxnDate="2026-03-01")
    got = rows(query(sb, US1, "select * from Invoice where DocNumber = 'HS-DEAL-7'"), "Invoice")
    assert [i["Id"] for i in got] == [inv["Id"]]
    got = rows(query(sb, US1, "select * from Invoice where TxnDate >= '2026-01-01' "
                     "and CustomerRef = '3'"), "Invoice")
    assert [i["Id"] for i in got] == [inv["Id"]]
    got = rows(query(sb, US1, "select * from Invoice where MetaData.LastUpdatedTime > "
                     "'2025-01-01T00:00:00-0700'"), "Invoice")
    assert [i["Id"] for i in got] == [inv["Id"]]  # seeded 130 dates from 2024
    got = rows(query(sb, US1, "select * from Invoice where Balance > '0' orderby TxnDate"),
               "Invoice")
    assert [i["Id"] for i in got] == ["130", inv["Id"]]


def test_query_inactive_rows_hidden_unless_active_filtered(sb):
    got = rows(query(sb, US1, "select * from Item"), "Item")
    assert "5" not in [i["Id"] for i in got]
    got = rows(query(sb, US1, "select * from Item where Active = false"), "Item")
    assert [i["Id"] for i in got] == ["5"]
    sb.config(qbo={"hide_inactive": False})
    assert "5" in [i["Id"] for i in rows(query(sb, US1, "select * from Item"), "Item")]


# ---- state dump: what exists in "QuickBooks" ----------------------------------------------

def test_state_dump_lists_every_entity_per_realm(sb):
    inv = make_invoice(sb)
    st = state(sb, US1)
    assert [i["Id"] for i in st["Invoice"]] == ["130", inv["Id"]]
    assert st["Invoice"][1] == get(sb, US1, "invoice/" + inv["Id"]).json()["Invoice"]
    assert [c["DisplayName"] for c in st["Customer"]][:3] == [
        "Amy's Bird Sanctuary", "Robertson & Associates", "Ada Lovelace"]
    assert st["CompanyInfo"]["Country"] == "US"
    assert [i["Id"] for i in state(sb, US2)["Invoice"]] == []
    assert set(sb.state()["qbo"]) == {US1, US2, CA1, AST1, MC1}
    assert st["ast_rates"] == {} and st["exchange_rates"] == {}
    assert state(sb, AST1)["ast_rates"] == AST_RATES
    assert state(sb, MC1)["exchange_rates"] == EXCHANGE_RATES


# ---- sales tax, discounts, totals, currencies (issue 15; README "Tax, discounts, totals") ----

def line(amount, item="1", tax=None, **detail):
    d = dict({"ItemRef": {"value": item}}, **detail)
    if tax:
        d["TaxCodeRef"] = {"value": tax}
    return {"DetailType": "SalesItemLineDetail", "Amount": amount, "SalesItemLineDetail": d}


def discount(amount=None, percent=None):
    if percent is not None:
        return {"DetailType": "DiscountLineDetail", "Description": "Quote discount",
                "DiscountLineDetail": {"PercentBased": True, "DiscountPercent": percent}}
    return {"DetailType": "DiscountLineDetail", "Amount": amount, "Description": "Quote discount",
            "DiscountLineDetail": {"PercentBased": False}}


SALES_KINDS = {"invoice": "Invoice", "estimate": "Estimate", "salesreceipt": "SalesReceipt",
               "refundreceipt": "RefundReceipt"}


def sale(sb, realm, lines, customer="4", kind="invoice", status=200, **fields):
    """Create a sales document; its entity on 200, else the response (asserting status)."""
    body = dict({"CustomerRef": {"value": customer}, "Line": lines}, **fields)
    if kind == "refundreceipt":
        body.setdefault("DepositToAccountRef", {"value": "35"})
    r = post(sb, realm, kind, body)
    assert r.status == status, r
    return r.json()[SALES_KINDS[kind]] if status == 200 else r


def tax_line(doc):
    return doc["TxnTaxDetail"]["TaxLine"][0]["TaxLineDetail"]


def test_preferences_per_realm_tax_and_currency(sb):
    def prefs(realm):
        return get(sb, realm, "preferences").json()["Preferences"]
    for realm, ast, mc in ((US1, False, False), (US2, False, False), (AST1, True, False),
                           (MC1, True, True)):
        p = prefs(realm)
        assert p["TaxPrefs"] == {"UsingSalesTax": True, "PartnerTaxEnabled": ast}, realm
        assert p["CurrencyPrefs"]["MultiCurrencyEnabled"] is mc, realm
        assert p["CurrencyPrefs"]["HomeCurrency"]["value"] == "USD", realm
    q = query(sb, MC1, "select * from Preferences").json()["QueryResponse"]["Preferences"]
    assert q[0]["CurrencyPrefs"]["MultiCurrencyEnabled"] is True
    ci = get(sb, AST1, "companyinfo/" + AST1).json()["CompanyInfo"]
    assert ci["CompanyAddr"]["CountrySubDivisionCode"] == "CA"
    # same layout as US1: accounts, terms, items, customers by the same ids
    for kind in ("Account", "Term", "Item", "Customer", "Vendor"):
        ids = [e["Id"] for e in state(sb, US1)[kind]]
        assert [e["Id"] for e in state(sb, AST1)[kind]][:len(ids)] == ids, kind
        assert [e["Id"] for e in state(sb, MC1)[kind]] == ids, kind


def test_amount_discount_and_tax_make_total_and_balance(sb):
    inv = sale(sb, US1, [line(100.00), line(50.25, tax="TAX"), discount(12.34)],
               TxnTaxDetail={"TotalTax": 4.01})
    assert inv["TotalAmt"] == 141.92 and inv["Balance"] == 141.92  # 150.25 - 12.34 + 4.01
    disc = inv["Line"][2]
    assert disc["Amount"] == 12.34 and "Id" not in disc and "LineNum" not in disc
    assert disc["DiscountLineDetail"] == {"PercentBased": False}
    assert inv["Line"][-1]["Amount"] == 150.25  # subtotal of the sales lines
    assert [l["SalesItemLineDetail"]["TaxCodeRef"]["value"] for l in inv["Line"][:2]] == \
        ["NON", "TAX"]
    assert inv["TxnTaxDetail"] == {"TotalTax": 4.01}  # manual sales tax: as given
    assert inv["ApplyTaxAfterDiscount"] is False
    for kind in ("estimate", "salesreceipt", "refundreceipt"):
        doc = sale(sb, US1, [line(100.00), discount(12.34)], kind=kind,
                   TxnTaxDetail={"TotalTax": 1})
        assert doc["TotalAmt"] == 88.66, kind
    assert "Balance" not in sale(sb, US1, [line(1)], kind="estimate")


def test_percent_discount_rounds_half_cents_away_from_zero(sb):
    def pct_amount(amounts, percent):
        inv = sale(sb, US1, [line(a) for a in amounts] + [discount(percent=percent)])
        d = next(l for l in inv["Line"] if l["DetailType"] == "DiscountLineDetail")
        assert inv["TotalAmt"] == round(sum(amounts) - d["Amount"], 2)
        return d["Amount"]
    assert pct_amount([10.05], 10) == 1.01        # 1.005 -> up
    assert pct_amount([10.04], 10) == 1.00        # 1.004 -> down
    assert pct_amount([4.00], 8.875) == 0.36      # 0.355 -> up
    assert pct_amount([0.28], 8.875) == 0.02      # 0.02485 -> down
    assert pct_amount([6.00, 4.05], 10) == 1.01   # of the subtotal, not per line
    assert pct_amount([-10.05], 10) == -1.01      # -1.005 -> away from zero
    # one rounding on exact decimals: 0.05 x 9.999% = 0.0049995, never 0.005 first
    assert pct_amount([0.05], 9.999) == 0.00
    assert pct_amount([0.05], "10") == 0.01       # a numeric string is a number too


def test_discount_line_rules(sb):
    for bad in (150, -1):
        st, code, element, _, _ = fault(sale(sb, US1, [line(10), discount(percent=bad)],
                                             status=400))
        assert (st, code, element) == (400, "6000", "DiscountPercent"), bad
    assert fault(sale(sb, US1, [line(10), discount(percent="ten")], status=400))[1] == "2010"
    no_amount = {"DetailType": "DiscountLineDetail", "DiscountLineDetail": {"PercentBased": False}}
    assert fault(sale(sb, US1, [line(10), no_amount], status=400))[2] == "Line.Amount"
    assert sale(sb, US1, [line(10), discount(percent=100)])["TotalAmt"] == 0


def test_manual_sales_tax_codes_tax_and_non(sb):
    inv = sale(sb, US1, [line(10, tax="TAX"), line(20, tax="NON"), line(30)])
    assert [l["SalesItemLineDetail"]["TaxCodeRef"] for l in inv["Line"][:3]] == \
        [{"value": "TAX"}, {"value": "NON"}, {"value": "NON"}]
    assert inv["TxnTaxDetail"] == {"TotalTax": 0} and inv["TotalAmt"] == 60  # no AST: no tax
    st, code, element, _, _ = fault(sale(sb, US1, [line(10, tax="5")], status=400))
    assert (st, code, element) == (400, "2500", "TaxCodeRef")
    bad = line(10)
    bad["SalesItemLineDetail"]["TaxCodeRef"] = "TAX"
    assert fault(sale(sb, US1, [bad], status=400))[1] == "2010"


def test_tax_code_on_a_company_without_sales_tax_is_refused(sb):
    prefs = get(sb, US2, "preferences").json()["Preferences"]
    prefs["TaxPrefs"] = {"UsingSalesTax": False}
    assert sb.post("/_sandbox/seed", {"qbo": {"realms": [
        {"realm_id": US2, "Preferences": prefs}]}}).status == 200
    for code in ("TAX", "NON"):
        st, fcode, element, msg, detail = fault(sale(sb, US2, [line(10, tax=code)], status=400))
        assert (st, fcode, element) == (400, "6000", "TaxCodeRef")
        assert "UsingSalesTax is false" in detail
    inv = sale(sb, US2, [line(10)], TxnTaxDetail={"TotalTax": 0})
    assert "TaxCodeRef" not in inv["Line"][0]["SalesItemLineDetail"]  # no NON default either
    again = post(sb, US2, "invoice", dict(inv, sparse=True, PrivateNote="read, modify, write"))
    assert again.status == 200, again  # what the sandbox stored round-trips


def test_ast_taxes_taxable_items_at_the_destination_rate(sb):
    # customer 2: ShipAddr in TX (6.25%), BillAddr in NY; items 3 and 4 taxable, 1 and 2 not
    inv = sale(sb, AST1, [line(100.00, item="4", tax="NON"), line(50.00, item="1", tax="TAX")],
               customer="2")
    assert [l["SalesItemLineDetail"]["TaxCodeRef"]["value"] for l in inv["Line"][:2]] == \
        ["TAX", "NON"]  # AST overrides the codes sent: the Item's Taxable decides
    td = inv["TxnTaxDetail"]
    assert td["TotalTax"] == 6.25 and td["TxnTaxCodeRef"]["value"] == "TX"
    assert tax_line(inv) == {"PercentBased": True, "TaxPercent": 6.25, "NetAmountTaxable": 100.0}
    assert td["TaxLine"][0]["Amount"] == 6.25 and td["TaxLine"][0]["DetailType"] == "TaxLineDetail"
    assert inv["TotalAmt"] == 156.25 and inv["Balance"] == 156.25

    def rate_of(customer, **fields):
        doc = sale(sb, AST1, [line(10.00, item="4")], customer=customer, **fields)
        return doc["TxnTaxDetail"]["TxnTaxCodeRef"]["value"], doc["TxnTaxDetail"]["TotalTax"]
    assert rate_of("1") == ("CA", 0.73)  # BillAddr only (CA): 0.725 -> 0.73
    assert rate_of("4") == ("CA", 0.73)  # no address: the company's (CA)
    assert rate_of("4", ShipAddr={"CountrySubDivisionCode": "wa"}) == ("WA", 0.65)
    assert rate_of("4", ShipAddr={"CountrySubDivisionCode": "OR"}) == ("*", 0.50)
    assert rate_of("2", ShipAddr={"City": "Nowhere"}, BillAddr={"CountrySubDivisionCode": "NY"}) \
        == ("NY", 0.89)  # no state on the ShipAddr sent: the BillAddr's
    assert rate_of("7") == ("WA", 0)  # a customer with Taxable false pays no tax
    sb.config(qbo={"ast_bill_addr_fallback": False})
    assert rate_of("1") == ("CA", 0.73)
    assert rate_of("2", ShipAddr={"City": "Nowhere"}, BillAddr={"CountrySubDivisionCode": "NY"}) \
        == ("CA", 0.73)  # Intuit's wording: ShipAddr, else the company address


def test_ast_honours_an_explicit_total_tax(sb):
    inv = sale(sb, AST1, [line(100.00, item="4"), line(20, item="3")], customer="2",
               TxnTaxDetail={"TotalTax": 1.23})
    assert inv["TxnTaxDetail"]["TotalTax"] == 1.23 and inv["TotalAmt"] == 121.23
    assert inv["TxnTaxDetail"]["TaxLine"][0]["Amount"] == 1.23
    assert tax_line(inv)["NetAmountTaxable"] == 120.0
    # a paid invoice: every line NON and TotalTax 0 -- AST keeps TAX on taxable items,
    # but the explicit zero stops it from adding tax, so Balance can reach 0
    paid = sale(sb, AST1, [line(100.00, item="4", tax="NON")], customer="1",
                TxnTaxDetail={"TotalTax": 0})
    assert paid["Line"][0]["SalesItemLineDetail"]["TaxCodeRef"]["value"] == "TAX"
    assert paid["TotalAmt"] == 100.0 and paid["TxnTaxDetail"]["TotalTax"] == 0
    p = post(sb, AST1, "payment", {"CustomerRef": {"value": "1"}, "TotalAmt": 100, "Line": [
        {"Amount": 100, "LinkedTxn": [{"TxnId": paid["Id"], "TxnType": "Invoice"}]}]})
    assert p.status == 200, p
    assert get(sb, AST1, "invoice/" + paid["Id"]).json()["Invoice"]["Balance"] == 0


def test_ast_tax_rounds_half_cents_away_from_zero(sb):
    def tax(amounts, customer="4", item="4"):
        doc = sale(sb, AST1, [line(a, item=item) for a in amounts], customer=customer)
        assert doc["TotalAmt"] == round(sum(amounts) + doc["TxnTaxDetail"]["TotalTax"], 2)
        return doc["TxnTaxDetail"]["TotalTax"]
    assert tax([2.00]) == 0.15     # CA 7.25%: 0.145 -> up
    assert tax([0.34]) == 0.02     # 0.02465 -> down
    assert tax([1.50, 0.50]) == 0.15  # on the sum of the TAX lines, rounded once
    assert tax([-2.00]) == -0.15   # -0.145 -> away from zero
    assert tax([0.08], customer="2") == 0.01  # TX 6.25%: 0.005 -> up
    assert tax([0.07], customer="2") == 0.00  # 0.004375 -> down
    # NY 8.875% (three decimals) on MC1's company address
    assert sale(sb, MC1, [line(4.00, item="4")])["TxnTaxDetail"]["TotalTax"] == 0.36
    assert sale(sb, MC1, [line(0.28, item="4")])["TxnTaxDetail"]["TotalTax"] == 0.02


def test_ast_takes_the_discount_share_of_taxable_lines(sb):
    def taxed(lines, **fields):
        doc = sale(sb, AST1, lines, **fields)
        return tax_line(doc)["NetAmountTaxable"], doc["TxnTaxDetail"]["TotalTax"], doc
    # 30.00 taxable of 40.00, discount 10% = 4.00: share 3.00, base 27.00, CA tax 1.9575
    base, tx, doc = taxed([line(30.00, item="4"), line(10.00, item="1"), discount(percent=10)])
    assert (base, tx) == (27.0, 1.96) and doc["TotalAmt"] == 37.96  # 40 - 4 + 1.96
    assert doc["ApplyTaxAfterDiscount"] is True
    # share rounding: 0.02 x 1.00 / 4.00 = 0.005 -> 0.01; 0.01 x 1/4 = 0.0025 -> 0.00
    assert taxed([line(1.00, item="4"), line(3.00, item="1"), discount(0.02)])[0] == 0.99
    assert taxed([line(1.00, item="4"), line(3.00, item="1"), discount(0.01)])[0] == 1.00
    assert taxed([line(1.00, item="4"), line(3.00, item="1"), discount(0.03)])[0] == 0.99
    # ApplyTaxAfterDiscount sent false: tax on the undiscounted amounts
    base, tx, doc = taxed([line(30.00, item="4"), line(10.00, item="1"), discount(percent=10)],
                          ApplyTaxAfterDiscount=False)
    assert (base, tx, doc["TotalAmt"]) == (30.0, 2.18, 38.18)
    assert fault(sale(sb, AST1, [line(1, item="4"), discount(0.5)], status=400,
                      ApplyTaxAfterDiscount="yes"))[1] == "2010"


def test_ast_applies_to_every_sales_document_kind(sb):
    for kind in ("invoice", "estimate", "salesreceipt", "refundreceipt"):
        doc = sale(sb, AST1, [line(200.00, item="3"), discount(20)], kind=kind, customer="1")
        assert doc["TxnTaxDetail"]["TotalTax"] == 13.05, kind  # (200 - 20) x 7.25%
        assert doc["TotalAmt"] == 193.05, kind


def test_tax_detail_and_amount_types_are_checked(sb):
    for realm in (US1, AST1):
        assert fault(sale(sb, realm, [line(1)], status=400, TxnTaxDetail="5"))[1] == "2010"
        assert fault(sale(sb, realm, [line(1)], status=400,
                          TxnTaxDetail={"TotalTax": "lots"}))[1] == "2010"
    # sums that would overflow are refused, not wrapped
    huge = [line(90000000000000000), line(90000000000000000)]
    assert fault(sale(sb, US1, huge, status=400))[1] == "2010"
    assert fault(sale(sb, AST1, [line(1)], status=400,
                      TxnTaxDetail={"TotalTax": 1e18}))[1] == "2010"


def test_currency_refused_when_multicurrency_is_off(sb):
    st, code, element, _, detail = fault(post(sb, US1, "customer", {
        "DisplayName": "Hans Euro", "CurrencyRef": {"value": "EUR"}}))
    assert (st, code, element) == (400, "6000", "CurrencyRef")
    assert detail == ("Business Validation Error: Multicurrency is not enabled for this company: "
                      "the currency EUR differs from the home currency USD.")
    for kind in ("invoice", "estimate", "salesreceipt", "refundreceipt"):
        r = sale(sb, US1, [line(10)], kind=kind, status=400, CurrencyRef={"value": "EUR"})
        assert fault(r)[1:3] == ("6000", "CurrencyRef"), kind
    assert fault(post(sb, US1, "payment", {"CustomerRef": {"value": "3"}, "TotalAmt": 5,
                                           "CurrencyRef": {"value": "GBP"}}))[2] == "CurrencyRef"
    assert fault(post(sb, US1, "purchase", dict(EXPENSE, CurrencyRef={"value": "EUR"})))[2] == \
        "CurrencyRef"
    inv = sale(sb, US1, [line(10)], CurrencyRef={"value": "USD"})  # the home currency is fine
    assert inv["CurrencyRef"] == {"value": "USD", "name": "United States Dollar"}
    assert "ExchangeRate" not in inv and "HomeTotalAmt" not in inv


def test_multicurrency_customers_keep_their_currency(sb):
    ada = get(sb, MC1, "customer/3").json()["Customer"]
    assert ada["CurrencyRef"] == {"value": "EUR", "name": "Euro"}
    assert get(sb, MC1, "customer/6").json()["Customer"]["CurrencyRef"]["value"] == "GBP"
    assert get(sb, MC1, "customer/1").json()["Customer"]["CurrencyRef"]["value"] == "USD"
    c = post(sb, MC1, "customer", {"DisplayName": "Ada Lovelace (GBP)",
                                   "CurrencyRef": {"value": "GBP"}}).json()["Customer"]
    assert c["CurrencyRef"] == {"value": "GBP", "name": "British Pound Sterling"}
    st, code, element, _, detail = fault(post(sb, MC1, "customer", {
        "Id": c["Id"], "SyncToken": "0", "sparse": True, "CurrencyRef": {"value": "EUR"}}))
    assert (st, code, element) == (400, "6000", "CurrencyRef") and "cannot be changed" in detail
    full = post(sb, MC1, "customer", {"Id": c["Id"], "SyncToken": "0",
                                      "DisplayName": "Ada Lovelace (GBP)"})  # no CurrencyRef
    assert full.json()["Customer"]["CurrencyRef"]["value"] == "GBP"
    assert fault(post(sb, MC1, "customer", {"DisplayName": "Yen", "CurrencyRef":
                                            {"value": "JPY"}}))[1:3] == ("6000", "CurrencyRef")
    for bad in ({"value": "euro"}, {"value": 978}, "EUR"):
        assert fault(post(sb, MC1, "customer", {"DisplayName": "Bad", "CurrencyRef": bad}))[1] \
            == "2010", bad
    rows_ = query(sb, MC1, "select * from Customer where DisplayName = 'Ada Lovelace'").json()
    assert rows_["QueryResponse"]["Customer"][0]["CurrencyRef"]["value"] == "EUR"


def test_multicurrency_document_follows_its_customer(sb):
    sb.config(qbo={"exchange_rate_default": "seeded"})  # the seeded rate when none is sent
    inv = sale(sb, MC1, [line(100.00, item="4")], customer="3", CurrencyRef={"value": "EUR"},
               TxnTaxDetail={"TotalTax": 0})
    assert inv["CurrencyRef"] == {"value": "EUR", "name": "Euro"}
    assert inv["ExchangeRate"] == 1.08 and b'"ExchangeRate":1.08' in post(
        sb, MC1, "invoice", dict(inv, sparse=True)).body
    assert (inv["TotalAmt"], inv["HomeTotalAmt"], inv["Balance"], inv["HomeBalance"]) == \
        (100.0, 108.0, 100.0, 108.0)
    # no CurrencyRef: the customer's currency
    assert sale(sb, MC1, [line(1)], customer="6")["CurrencyRef"]["value"] == "GBP"
    st, code, element, _, detail = fault(sale(sb, MC1, [line(1)], customer="3", status=400,
                                              CurrencyRef={"value": "GBP"}))
    assert (st, code, element) == (400, "6000", "CurrencyRef")
    assert detail == ("Business Validation Error: The currency of the transaction must match the "
                      "customer's currency (transaction GBP, customer EUR).")
    assert fault(sale(sb, MC1, [line(1)], customer="1", status=400,
                      CurrencyRef={"value": "EUR"}))[1:3] == ("6000", "CurrencyRef")
    # a home-currency document records rate 1
    usd = sale(sb, MC1, [line(10.00)], customer="1")
    assert (usd["ExchangeRate"], usd["HomeTotalAmt"]) == (1, 10.0)
    for kind in ("estimate", "salesreceipt", "refundreceipt"):
        doc = sale(sb, MC1, [line(10.00)], customer="6", kind=kind, TxnTaxDetail={"TotalTax": 0})
        assert (doc["CurrencyRef"]["value"], doc["ExchangeRate"], doc["HomeTotalAmt"]) == \
            ("GBP", 1.27, 12.7), kind


def test_multicurrency_exchange_rate_sent_or_seeded_and_home_rounding(sb):
    inv = sale(sb, MC1, [line(99.99, item="1")], customer="3", ExchangeRate=1.1,
               TxnTaxDetail={"TotalTax": 0})
    assert (inv["ExchangeRate"], inv["HomeTotalAmt"]) == (1.1, 109.99)  # 109.989 -> up
    inv = sale(sb, MC1, [line(0.50, item="1")], customer="3", ExchangeRate="1.09",
               TxnTaxDetail={"TotalTax": 0})
    assert inv["HomeTotalAmt"] == 0.55  # 0.545 -> up
    inv = sale(sb, MC1, [line(0.50, item="1")], customer="3", ExchangeRate=1.07,
               TxnTaxDetail={"TotalTax": 0})
    assert inv["HomeTotalAmt"] == 0.54  # 0.535 -> up; 0.534999 would not be
    for bad in (0, -1, "abc", 2000000):
        assert fault(sale(sb, MC1, [line(1)], customer="3", status=400, ExchangeRate=bad))[1] \
            == "2010", bad
    # by default, as field reports describe QBO: no ExchangeRate sent is 1:1
    inv = sale(sb, MC1, [line(10.00, item="1")], customer="3")
    assert (inv["ExchangeRate"], inv["HomeTotalAmt"]) == (1, 10.0)
    sb.config(qbo={"exchange_rate_default": "seeded"})
    inv = sale(sb, MC1, [line(10.00, item="1")], customer="3")
    assert (inv["ExchangeRate"], inv["HomeTotalAmt"]) == (1.08, 10.8)


def test_exchange_rate_endpoint(sb):
    r = get(sb, MC1, "exchangerate", sourcecurrencycode="EUR", asofdate="2024-03-05")
    assert r.status == 200, r.body
    x = r.json()["ExchangeRate"]
    assert (x["SourceCurrencyCode"], x["TargetCurrencyCode"], x["Rate"], x["AsOfDate"]) == \
        ("EUR", "USD", 1.08, "2024-03-05")
    assert b'"Rate":1.08' in r.body
    assert len(get(sb, MC1, "exchangerate", sourcecurrencycode="GBP").json()[
        "ExchangeRate"]["AsOfDate"]) == 10  # today, in the company's zone
    for realm, code in ((MC1, "JPY"), (MC1, "USD"), (MC1, None), (US1, "EUR")):
        q = {"sourcecurrencycode": code} if code else {}
        st, fc, element, _, _ = fault(get(sb, realm, "exchangerate", **q))
        assert (st, fc, element) == (400, "2010", "sourcecurrencycode"), (realm, code)


def test_multicurrency_payment_and_home_balance(sb):
    sb.config(qbo={"exchange_rate_default": "seeded"})  # the seeded rate when none is sent
    inv = sale(sb, MC1, [line(100.00, item="1")], customer="3")  # EUR, item 1 not taxable
    assert inv["HomeBalance"] == 108.0
    body = {"CustomerRef": {"value": "3"}, "TotalAmt": 40, "Line": [
        {"Amount": 40, "LinkedTxn": [{"TxnId": inv["Id"], "TxnType": "Invoice"}]}]}
    st, code, element, _, _ = fault(post(sb, MC1, "payment",
                                         dict(body, CurrencyRef={"value": "USD"})))
    assert (st, code, element) == (400, "6000", "CurrencyRef")
    p = post(sb, MC1, "payment", body).json()["Payment"]
    assert p["CurrencyRef"]["value"] == "EUR" and p["ExchangeRate"] == 1.08
    after = get(sb, MC1, "invoice/" + inv["Id"]).json()["Invoice"]
    assert (after["Balance"], after["HomeBalance"]) == (60.0, 64.8)
    post(sb, MC1, "payment", {"Id": p["Id"], "SyncToken": "0"}, operation="delete")
    assert get(sb, MC1, "invoice/" + inv["Id"]).json()["Invoice"]["HomeBalance"] == 108.0
    v = post(sb, MC1, "invoice", {"Id": inv["Id"], "SyncToken": "2"}, operation="void")
    v = v.json()["Invoice"]
    assert (v["TotalAmt"], v["HomeTotalAmt"], v["HomeBalance"], v["TxnTaxDetail"]["TotalTax"]) \
        == (0, 0, 0, 0)


def test_multicurrency_purchase_follows_its_vendor(sb):
    sb.config(qbo={"exchange_rate_default": "seeded"})  # the seeded rate when none is sent
    p = post(sb, MC1, "purchase", dict(EXPENSE)).json()["Purchase"]
    assert p["CurrencyRef"]["value"] == "USD" and p["ExchangeRate"] == 1
    st, code, element, _, detail = fault(post(sb, MC1, "purchase",
                                              dict(EXPENSE, CurrencyRef={"value": "EUR"})))
    assert (st, code, element) == (400, "6000", "CurrencyRef") and "vendor's currency" in detail
    no_vendor = {k: v for k, v in EXPENSE.items() if k != "EntityRef"}
    p = post(sb, MC1, "purchase", dict(no_vendor, CurrencyRef={"value": "EUR"})).json()["Purchase"]
    assert p["CurrencyRef"]["value"] == "EUR" and p["ExchangeRate"] == 1.08
    v = post(sb, MC1, "vendor", {"DisplayName": "Euro Supplies", "CurrencyRef":
                                 {"value": "EUR"}}).json()["Vendor"]
    p = post(sb, MC1, "purchase", dict(EXPENSE, EntityRef={"value": v["Id"]})).json()["Purchase"]
    assert p["CurrencyRef"]["value"] == "EUR"


def test_seeded_rate_tables_are_validated(sb):
    for key, table in (("ast_rates", {"CA": "101"}), ("ast_rates", {"ca": "5"}),
                       ("ast_rates", {"CA": "x"}), ("exchange_rates", {"EUR": "0"}),
                       ("exchange_rates", {"EURO": "1"}), ("exchange_rates", {"EUR": True}),
                       ("exchange_rates", ["EUR"])):
        r = sb.post("/_sandbox/seed", {"qbo": {"realms": [{"realm_id": MC1, key: table}]}})
        assert r.status == 400, (key, table, r)
    r = sb.post("/_sandbox/seed", {"qbo": {"realms": [{"realm_id": MC1, "exchange_rates":
                                                        {"JPY": 0.0067}, "ast_rates": {"CA": 8}}]}})
    assert r.status == 200, r
    st = state(sb, MC1)
    assert st["exchange_rates"] == dict(EXCHANGE_RATES, JPY="0.0067")
    assert st["ast_rates"]["CA"] == "8"
    assert post(sb, MC1, "customer", {"DisplayName": "Yen", "CurrencyRef":
                                      {"value": "JPY"}}).status == 200


def test_new_realms_are_connected_with_static_tokens(sb):
    for realm in (AST1, MC1):
        assert get(sb, realm, "companyinfo/" + realm).status == 200
        r = refresh(sb, RT[realm])
        assert r.status == 200 and r.json()["refresh_token"] == RT[realm]
    assert get(sb, AST1, "companyinfo/" + AST1, token=AT[MC1]).status == 401
