"""Tenant binding end to end (issue 18 item 3): which HubSpot portal may write to which
QuickBooks company, enforced by the worker before any API call.

The harness binds every seeded realm to portal 1 (`credentials qbo --portal`, harness
REALM_PORTAL); these tests move US2 to portal 2 with `credentials unbind` / `bind`, as an
operator would, and check from the outside: results and dead letters read back with
python3-kafka, what reached HubSpot, QuickBooks and Intuit from the sandbox's request log.

    make && /usr/bin/python3 -m pytest -q tests/integration/test_tenancy.py

Seeded facts used: portal 2 (243987001) has deal 1101 with contact 401 and one line item;
portal 1 (102670506) has deal 1005. Portal 555000111 exists nowhere and has no token.
"""
import time

import pytest

import harness
from harness import PORTAL1, PORTAL2, US1, US2

STRANGER = 555000111  # no token of its own; the integration stack sets no default token


def api_calls(h):
    """Requests the sandbox logged to HubSpot, QuickBooks and Intuit's token endpoint."""
    return [r for r in h.sandbox.requests() if r.get("vendor") in ("hubspot", "qbo", "oauth")]


def refusal(h, ev, code):
    """The event's one result is a failure with code, not retryable; its dead letter says
    so too. Returns the result's data."""
    data = h.wait_result(ev, timeout=60)["data"]
    assert data["status"] == "failed", data
    assert data["error"]["code"] == code, data["error"]
    assert data["error"]["retryable"] is False
    assert "no call was made" in data["error"]["message"]
    dlq = h.wait_dlq([ev.coords], timeout=30)[ev.coords]
    assert dlq[0].header("hsqb-error-code") == code, dlq[0].headers
    return data


@pytest.fixture
def us2_on_portal2(hsqb):
    """US2 bound to portal 2 for the test (bound to portal 1 again afterwards)."""
    h = hsqb
    h.unbind(US2)
    r = h.bind(US2, PORTAL2)
    assert r.returncode == 0, r.stderr
    try:
        yield h
    finally:
        h.store_credentials(realms=[US2], portals=())


def test_bound_realm_books_and_other_tenants_are_refused_without_a_call(us2_on_portal2):
    h = us2_on_portal2
    # Portal 1 naming portal 2's company, a portal with no credentials at all: refused,
    # and nothing reached any API.
    other = h.event("create_invoice", "DEAL", 1005, US2)
    stranger = h.event("create_invoice", "DEAL", 1005, US1, portal=STRANGER)
    h.produce(other, stranger)
    data = refusal(h, other, "REALM_NOT_ALLOWED")
    assert data["realm_id"] == US2 and data["portal_id"] == PORTAL1
    assert str(PORTAL2) not in data["error"]["message"], "another tenant's portal was named"
    refusal(h, stranger, "PORTAL_NOT_CONNECTED")
    assert api_calls(h) == [], "a refused event reached an API"

    # Each portal's own company: booked.
    own2 = h.event("create_invoice", "DEAL", 1101, US2, portal=PORTAL2,
                   create_missing_products="true")
    own1 = h.event("create_invoice", "DEAL", 1005, US1)
    h.produce(own2, own1)
    for ev in (own2, own1):
        data = h.wait_result(ev, timeout=60)["data"]
        assert data["status"] == "succeeded", data.get("error")
    docs = harness.docs_for_event(h.sandbox.qbo(US2), own2.id)
    assert len(docs) == 1 and docs[0][0] == "Invoice", docs


def test_unbind_stops_further_events(us2_on_portal2):
    h = us2_on_portal2
    first = h.event("create_invoice", "DEAL", 1101, US2, portal=PORTAL2,
                    create_missing_products="true")
    h.produce(first)
    assert h.wait_result(first, timeout=60)["data"]["status"] == "succeeded"

    # The operator disconnects the company from portal 2. Every replica sees it within
    # about a second (tenancy:{epoch}), although each holds the binding in memory.
    h.unbind(US2)
    time.sleep(harness.TENANCY_EPOCH_S + 0.3)
    seen = len(api_calls(h))
    later = [h.event("create_invoice", "DEAL", 1101, US2, portal=PORTAL2,
                     create_missing_products="true") for _ in range(4)]
    h.produce(*later)
    for ev in later:
        refusal(h, ev, "REALM_NOT_ALLOWED")
    assert len(api_calls(h)) == seen, "an event of the unbound realm reached an API"

    # Bound again: a replay of a refused event books it (replay ignores the stored failure).
    assert h.bind(US2, PORTAL2).returncode == 0
    r = h.cli(["replay", "--event-id", later[0].id])
    assert r.returncode == 0, r.stderr
    res = h.wait_results([later[0].id], timeout=60, count=2)[later[0].id]
    assert res[-1].json["data"]["status"] == "succeeded", res[-1].json["data"].get("error")
