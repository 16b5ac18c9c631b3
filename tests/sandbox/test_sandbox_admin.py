"""hsqb-sandbox core: CLI, admin API, request log, fault rules, latency, limits."""
import http.client
import json
import os
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import PORTAL1, TOKEN1, Sandbox, sandbox_binary

DEAL = "/crm/v3/objects/deals/1001"
CB1 = "ap-102670506-56776413549-7-0"


# ---- CLI and process ------------------------------------------------------------------------

def test_cli_prints_base_url_and_exits_on_sigterm():
    s = Sandbox(args=["--threads", "2", "--latency-ms", "5"])
    try:
        assert s.stdout_line == s.base
        assert s.get("/_sandbox/health").json() == {"status": "ok"}
        assert s.get("/_sandbox/config").json()["latency_ms"] == 5
    finally:
        assert s.stop(signal.SIGTERM) == 0


def test_cli_rejects_bad_flags():
    for args in (["--no-such-flag", "1"], ["--latency-ms", "-1"], ["--listen", "nonsense"],
                 ["--threads", "0"], ["--seed", "/nonexistent-dir"], ["positional"]):
        p = subprocess.run([str(sandbox_binary())] + args, capture_output=True, timeout=10)
        assert p.returncode in (1, 2), (args, p)
        assert p.stderr


def test_bad_seed_file_fails_startup(tmp_path):
    (tmp_path / "a.json").write_text('{"hubspot":{"portals":[{"portalId":"x"}]}}')
    p = subprocess.run([str(sandbox_binary()), "--seed", str(tmp_path)], capture_output=True,
                       timeout=10)
    assert p.returncode == 1 and b"portalId" in p.stderr


# ---- request log ------------------------------------------------------------------------------

def test_request_log_cuts_a_long_query_at_4095_bytes(sb):
    # The log re-joins the decoded arguments (a bare key keeps no '='); a query longer
    # than the entry's 4 KiB buffer is cut at 4095 bytes, mid-argument if need be.
    args = ["flag", "empty="] + ["k%03d=%s" % (i, "v" * 40) for i in range(120)]
    sb.get("/nowhere?" + "&".join(args))
    (entry,) = sb.requests()
    assert entry["query"] == "&".join(args)[:4095]


def test_request_log_records_and_filters(sb):
    sb.hs("GET", DEAL + "?properties=amount")
    sb.hs("POST", "/crm/v3/objects/deals/batch/read", {"inputs": [{"id": "9"}]})
    sb.get("/nowhere")
    sb.get("/_sandbox/health")  # admin calls are not logged
    log = sb.requests()
    assert [e["path"] for e in log] == [DEAL, "/crm/v3/objects/deals/batch/read", "/nowhere"]
    first, batch, nowhere = log
    assert first["method"] == "GET" and first["query"] == "properties=amount"
    assert first["status"] == 200 and first["vendor"] == "hubspot"
    assert first["tenant"] == PORTAL1 and first["duration_ms"] >= 0
    assert json.loads(batch["body"]) == {"inputs": [{"id": "9"}]}
    assert batch["status"] == 207 and batch["seq"] > first["seq"]
    assert nowhere["status"] == 404 and nowhere["vendor"] == "none"
    assert [e["path"] for e in sb.requests(method="POST")] == [batch["path"]]
    assert [e["seq"] for e in sb.requests(since=first["seq"])] == [batch["seq"], nowhere["seq"]]
    assert len(sb.requests(limit=1)) == 1
    assert len(sb.requests(path="/crm/v3/objects/deals")) == 2
    assert len(sb.requests(vendor="none")) == 1
    assert len(sb.requests(status=207)) == 1
    assert sb.call("DELETE", "/_sandbox/requests").status == 204
    assert sb.requests() == []
    assert sb.get("/_sandbox/requests?limit=0").status == 400


def test_request_log_is_bounded(sb):
    sb.config(log_entries=3, log_body_max=4)
    for i in range(5):
        sb.hs("POST", "/crm/v3/objects/deals/batch/read", {"inputs": [{"id": str(i)}]})
    r = sb.get("/_sandbox/requests").json()
    assert len(r["requests"]) == 3 and r["evicted"] == 2
    e = r["requests"][-1]
    assert e["body"] == '{"in' and e["body_truncated"] is True and e["body_len"] > 4


def test_request_log_answer_is_json_c_text(sb):
    """The log is written as text (admin.c), escaped as json-c escapes: compact
    separators, '/' and non-ASCII kept, quotes, backslashes and control bytes escaped."""
    body = '{"note":"a/b \\"q\\" \\\\ caf\u00e9 \u2713\\n\\t\\u0001"}'
    sb.hs("POST", "/crm/v3/objects/deals/batch/read", body.encode())
    sb.get("/nowhere?x=%C3%A9/&y=%22")
    raw = sb.get("/_sandbox/requests").body
    doc = json.loads(raw)
    assert raw == json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
    assert doc["requests"][0]["body"] == body
    assert list(doc) == ["requests", "next_since", "total_recorded", "evicted"]
    assert list(doc["requests"][1]) == [
        "seq", "time", "time_ms", "method", "path", "query", "body", "body_len",
        "body_truncated", "status", "duration_ms", "vendor", "tenant"]
    assert b'"query":"x=\xc3\xa9/&y=\\""' in raw


def hwm_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))


def test_reading_a_large_log_costs_little_memory():
    """Reading 6,000 entries needs about the answer's size, not a json-c tree of it (the
    bench reads 260,000 entries; a tree cost ~1.7 KB an entry)."""
    s = Sandbox(args=["--log-entries", "10000"])
    try:
        c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
        for _ in range(6000):
            c.request("GET", "/nowhere/at/all")
            c.getresponse().read()
        c.close()
        before = hwm_kb(s.proc.pid)
        r = s.get("/_sandbox/requests?limit=6000")
        assert len(r.json()["requests"]) == 6000
        grown = hwm_kb(s.proc.pid) - before
        assert grown < 3 * len(r.body) // 1024 + 1024, (grown, len(r.body))
    finally:
        assert s.stop() == 0


def test_request_log_masks_oauth_secrets(sb):
    """Token requests are logged with client secrets, refresh tokens and authorization
    codes masked (body and query), so a test printing the log leaks none of them; other
    parameters, including grant_type=refresh_token, stay readable."""
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    rt = "na1-rt-11111111-aaaa-4bbb-8ccc-dddddddddddd"
    refresh = ("grant_type=refresh_token&client_id=hsqb-client-id-1"
               "&client_secret=hsqb-client-secret-1&refresh_token=" + rt)
    assert sb.post("/oauth/v1/token", refresh, headers=form).status == 200
    code = ("grant_type=authorization_code&client_id=hsqb-client-id-1"
            "&client_secret=hsqb-client-secret-1&code=code-11111111&redirect_uri=http://x/")
    assert sb.post("/oauth/v3/token", code, headers=form).status == 200
    assert sb.post("/oauth/v1/token?" + refresh).status == 200  # v1: query parameters
    intuit = "grant_type=refresh_token&refresh_token=RT1-secret-value&client_secret=&x=1"
    sb.post("/oauth2/v1/tokens/bearer", intuit, headers=form)
    log = sb.requests()
    assert [e["body"] for e in log] == [
        "grant_type=refresh_token&client_id=hsqb-client-id-1&client_secret=***"
        "&refresh_token=***",
        "grant_type=authorization_code&client_id=hsqb-client-id-1&client_secret=***"
        "&code=***&redirect_uri=http://x/",
        "",
        "grant_type=refresh_token&refresh_token=***&client_secret=&x=1"]
    assert log[2]["query"] == ("grant_type=refresh_token&client_id=hsqb-client-id-1"
                               "&client_secret=***&refresh_token=***")
    assert [e["body_len"] for e in log] == [len(refresh), len(code), 0, len(intuit)]
    assert not any(e["body_truncated"] for e in log)
    dump = json.dumps(log)
    for secret in ("hsqb-client-secret-1", rt, "code-11111111", "RT1-secret-value"):
        assert secret not in dump
    # A JSON body with the same words is not a form: it is logged as sent.
    body = {"inputs": [{"id": "1001"}], "code": "x", "refresh_token": "y"}
    sb.hs("POST", "/crm/v3/objects/deals/batch/read", body)
    assert json.loads(sb.requests()[-1]["body"]) == body


def test_qbo_realm_recorded_as_tenant(sb):
    sb.get("/v3/company/9130355377388383/companyinfo/9130355377388383")
    assert sb.requests(vendor="qbo")[-1]["tenant"] == "9130355377388383"


# ---- fault rules ------------------------------------------------------------------------------

def test_fault_next_n_with_status_body_headers(sb):
    rule = sb.fault(method="GET", path="/crm/v3/objects/deals/*", times=2, status=503,
                    body={"status": "error", "message": "down"}, headers={"Retry-After": "7"})
    assert rule["remaining"] == 2
    for _ in range(2):
        r = sb.hs("GET", DEAL)
        assert r.status == 503 and r.headers["Retry-After"] == "7"
        assert r.json() == {"status": "error", "message": "down"}
        assert r.headers["Content-Type"].startswith("application/json")
    assert sb.hs("GET", DEAL).status == 200
    f = sb.get("/_sandbox/faults").json()["faults"][0]
    assert f["fired"] == 2 and f["remaining"] == 0 and f["matched"] == 2
    assert [e["fault_id"] for e in sb.requests()[:2]] == [rule["id"]] * 2


def test_fault_body_with_nul_bytes_served_whole(sb):
    """A rule's string body keeps every byte, NULs included, however often it fires (the
    copy made per firing read past a body cut at its first NUL: found under ASan by the
    hostile-input campaign, tests/integration/test_hostile.py)."""
    sb.fault(path=DEAL, status=404, body="\u0000\u0001\u0002x", times=3)
    for _ in range(3):
        r = sb.hs("GET", DEAL)
        assert r.status == 404 and r.body == b"\x00\x01\x02x"


def test_fault_content_type_short_names_and_mime_types(sb):
    """content_type takes the README's short names (json, xml, ...) as well as full MIME
    types, case-insensitively and with parameters."""
    cases = [("json", "application/json"), ("xml", "application/xml"),
             ("XML", "application/xml"), ("text", "text/plain"), ("html", "text/html"),
             ("application/xml", "application/xml"), ("text/xml", "text/xml"),
             ("application/json; charset=utf-8", "application/json"),
             ("text/plain", "text/plain")]
    for ct, want in cases:
        sb.call("DELETE", "/_sandbox/faults")
        sb.fault(path=DEAL, status=500, body="<Fault/>", content_type=ct, times=1)
        r = sb.hs("GET", DEAL)
        assert r.status == 500 and r.body == b"<Fault/>", ct
        assert r.headers["Content-Type"].split(";")[0] == want, ct
    for bad in ("jsn", "image/png", "", "application/xmlx"):
        r = sb.post("/_sandbox/faults", {"path": DEAL, "status": 500, "content_type": bad})
        assert r.status == 400 and "content_type" in r.json()["error"], bad


def test_fault_matching_method_vendor_skip_probability(sb):
    sb.fault(method="POST", path="/crm/*", status=500)
    assert sb.hs("GET", DEAL).status == 200  # method does not match
    sb.call("DELETE", "/_sandbox/faults")
    sb.fault(path="/crm/*", vendor="qbo", status=500)
    assert sb.hs("GET", DEAL).status == 200  # vendor does not match
    sb.call("DELETE", "/_sandbox/faults")
    sb.fault(path="/crm/v3/objects/deals/1001", skip=1, times=1, status=502)
    assert [sb.hs("GET", DEAL).status for _ in range(3)] == [200, 502, 200]
    sb.call("DELETE", "/_sandbox/faults")
    sb.fault(path="*", probability=0.0, status=500)
    assert all(sb.hs("GET", DEAL).status == 200 for _ in range(20))
    sb.call("DELETE", "/_sandbox/faults")
    sb.fault(path="*", probability=0.5, status=500)
    codes = {sb.hs("GET", DEAL).status for _ in range(60)}
    assert codes == {200, 500}


def test_fault_drop_connection(sb):
    sb.fault(path=DEAL, drop=True, times=1)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        sb.hs("GET", DEAL)
    assert sb.hs("GET", DEAL).status == 200
    assert sb.requests()[0]["status"] == 0


def test_fault_after_phase_keeps_side_effect(sb):
    """phase=after: the vendor handler runs (the callback is completed) but the client sees
    a dropped connection, as when a response is lost in transit."""
    path = "/automation/v4/actions/callbacks/%s/complete" % CB1
    sb.fault(path=path, drop=True, phase="after", times=1)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        sb.hs("POST", path, {"outputFields": {"hs_execution_state": "SUCCESS"}})
    cbs = sb.state(portal=PORTAL1)["hubspot"]["portals"][PORTAL1]["callbacks"]
    assert [c["state"] for c in cbs if c["callbackId"] == CB1] == ["COMPLETED"]
    sb.fault(path=path, status=502, phase="after", times=1, body="bad gateway")
    r = sb.hs("POST", "/automation/v4/actions/callbacks/%s/complete" %
              "ap-102670506-56776413550-7-0", {"outputFields": {"hs_execution_state": "SUCCESS"}})
    assert r.status == 204  # the rule's path does not match this callback


def test_fault_delay(sb):
    sb.fault(path=DEAL, delay_ms=300, times=1)
    t0 = time.monotonic()
    assert sb.hs("GET", DEAL).status == 200
    assert time.monotonic() - t0 >= 0.29
    t0 = time.monotonic()
    sb.hs("GET", DEAL)
    assert time.monotonic() - t0 < 0.25


def test_fault_rule_admin(sb):
    a = sb.fault(path="/a", status=500)
    b = sb.fault(path="/b", status=500)
    assert [f["id"] for f in sb.get("/_sandbox/faults").json()["faults"]] == [a["id"], b["id"]]
    assert sb.call("DELETE", "/_sandbox/faults/%d" % a["id"]).status == 204
    assert sb.call("DELETE", "/_sandbox/faults/%d" % a["id"]).status == 404
    assert [f["id"] for f in sb.get("/_sandbox/faults").json()["faults"]] == [b["id"]]
    for bad in ({}, {"path": "/x"}, {"path": "/x", "status": 99}, {"path": "/x", "drop": 1},
                {"path": "/x", "status": 500, "drop": True}, {"path": "/x", "status": 500,
                                                              "probability": 2},
                {"path": "/x", "status": 500, "phase": "during"},
                {"path": "/x", "status": 500, "vendor": "xero"},
                {"path": "/x", "status": 500, "headers": {"A": 1}},
                {"path": "/x", "status": 500, "content_type": "image/png"}):
        assert sb.post("/_sandbox/faults", bad).status == 400, bad
    assert sb.post("/_sandbox/faults", "{oops").status == 400
    sb.reset()
    assert sb.get("/_sandbox/faults").json()["faults"] == []


# ---- config and latency ---------------------------------------------------------------------

def test_config_latency_and_reset_restores(sb):
    c = sb.get("/_sandbox/config").json()
    assert c["latency_ms"] == 0 and c["hubspot_rate_10s"] == 190
    assert c["qbo_rate_min"] == 500 and c["qbo_concurrent"] == 10
    assert c["access_ttl_s"] == 3600
    sb.config(latency_ms=150, jitter_ms=50)
    t0 = time.monotonic()
    assert sb.hs("GET", DEAL).status == 200
    assert 0.149 <= time.monotonic() - t0 < 1.0
    t0 = time.monotonic()
    sb.get("/_sandbox/health")  # admin routes are never delayed
    assert time.monotonic() - t0 < 0.1
    for bad in ({"latency_ms": -1}, {"latency_ms": "5"}, {"nope": 1}, {"hubspot": 3},
                {"hubspot": {"nope": 1}}):
        assert sb.post("/_sandbox/config", bad).status == 400, bad
    sb.reset()
    assert sb.get("/_sandbox/config").json()["latency_ms"] == 0


def test_latency_does_not_hold_threads(sb):
    """100 concurrent requests with 200 ms latency on 2 server threads finish in about
    200 ms: waiting requests are suspended, not sleeping on a pool thread."""
    sb.config(latency_ms=200)
    results = []

    def one():
        results.append(sb.hs("GET", DEAL).status)

    threads = [threading.Thread(target=one) for _ in range(100)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    elapsed = time.monotonic() - t0
    assert results.count(200) == 100
    assert elapsed < 1.5, elapsed


def test_keepalive_connection_reused(sb):
    conn = http.client.HTTPConnection("127.0.0.1", sb.port, timeout=5)
    try:
        for _ in range(5):
            conn.request("GET", DEAL, headers={"Authorization": "Bearer " + TOKEN1})
            r = conn.getresponse()
            r.read()
            assert r.status == 200
        assert conn.sock is not None
    finally:
        conn.close()


# ---- reset, seed, state ----------------------------------------------------------------------

def test_reset_restores_seed_and_can_empty(sb):
    sb.hs("POST", "/automation/v4/actions/callbacks/%s/complete" % CB1,
          {"outputFields": {"hs_execution_state": "SUCCESS"}})
    sb.reset()
    cbs = sb.state(portal=PORTAL1)["hubspot"]["portals"][PORTAL1]["callbacks"]
    assert {c["state"] for c in cbs if c["callbackId"] == CB1} == {"PENDING"}
    sb.reset(seed=False)
    assert sb.hs("GET", DEAL).status == 401  # no tokens any more
    assert sb.state()["hubspot"]["portals"] == {}


def test_seed_endpoint_merges(sb):
    doc = {"hubspot": {"portals": [{
        "portalId": 5550001, "tokens": ["pat-na1-new"],
        "objects": {"contacts": [{"id": "1", "properties": {"firstname": "Nova", "age": 3}}],
                    "deals": [{"id": "2", "properties": {"dealname": "New"},
                               "associations": {"contacts": ["1"]}}]}}]},
        "qbo_or_other_vendor_key": {"ignored": True}}
    assert sb.post("/_sandbox/seed", doc).status == 200
    d = sb.hs("GET", "/crm/v3/objects/deals/2?associations=contacts&properties=dealname",
              token="pat-na1-new").json()
    assert d["associations"]["contacts"]["results"] == [{"id": "1", "type": "deal_to_contact"}]
    c = sb.hs("GET", "/crm/v3/objects/contacts/1?properties=age", token="pat-na1-new").json()
    assert c["properties"]["age"] == "3"  # seeded numbers become strings
    assert sb.hs("GET", DEAL).status == 200  # the original seed is still there
    bad = {"hubspot": {"portals": [{"portalId": 1, "objects": {"deals": [
        {"id": "3", "associations": {"contacts": ["404"]}}]}}]}}
    r = sb.post("/_sandbox/seed", bad)
    assert r.status == 400 and "does not exist" in r.json()["error"]
    for bad in ([], "x", {"hubspot": []}, {"hubspot": {"portals": [{"portalId": -1}]}},
                {"hubspot": {"portals": [{"portalId": 1, "objects": {"robots": []}}]}},
                {"hubspot": {"portals": [{"portalId": 1, "objects": {"deals": [{"id": "x"}]}}]}},
                {"hubspot": {"options": {"line_items_key": "li"}}}):
        assert sb.post("/_sandbox/seed", bad).status == 400, bad


def test_state_dump_filters(sb):
    s = sb.state(portal=PORTAL1)
    assert list(s) == ["hubspot"] and list(s["hubspot"]["portals"]) == [PORTAL1]
    deals = s["hubspot"]["portals"][PORTAL1]["objects"]["deals"]
    d = [x for x in deals if x["id"] == "1001"][0]
    assert d["associations"]["contacts"] == ["301", "302", "303"]
    assert d["properties"]["dealname"] == "Engines rollout"
    s = sb.state(realm="123")
    assert "hubspot" not in s and "qbo" in s
    assert set(sb.state()) == {"hubspot", "qbo", "oauth"}


def test_unknown_admin_route_and_body_cap(sb):
    assert sb.get("/_sandbox/nope").status == 404
    assert sb.call("PUT", "/_sandbox/reset").status == 404
    # Content-Length over the cap: answered 413 before the body is read.
    s = socket.create_connection(("127.0.0.1", sb.port), timeout=10)
    try:
        s.sendall(b"POST /crm/v3/objects/deals/batch/read HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Length: %d\r\n\r\n" % (4 * 1024 * 1024 + 1))
        assert s.recv(64).startswith(b"HTTP/1.1 413")
    finally:
        s.close()
    assert sb.requests()[-1]["status"] == 413


def test_body_cap_without_content_length(sb):
    """A chunked upload over the cap is read, discarded and answered 413."""
    s = socket.create_connection(("127.0.0.1", sb.port), timeout=10)
    try:
        s.sendall(b"POST /crm/v3/objects/deals/batch/read HTTP/1.1\r\nHost: x\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")
        chunk = b"x" * (1 << 20)
        for _ in range(5):
            s.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        s.sendall(b"0\r\n\r\n")
        head = s.recv(64)
        assert head.startswith(b"HTTP/1.1 413"), head
    finally:
        s.close()


def test_many_keepalive_connections_with_latency(sb):
    """Hold 300 idle keep-alive connections open while 50 ms latency is applied."""
    sb.config(latency_ms=50)
    socks = []
    try:
        for _ in range(300):
            socks.append(socket.create_connection(("127.0.0.1", sb.port), timeout=10))
        req = ("GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n"
               % (DEAL, TOKEN1)).encode()
        sb.config(hubspot_rate_10s=0)
        t0 = time.monotonic()
        for s in socks:
            s.sendall(req)
        ok = 0
        for s in socks:
            data = b""
            while b"\r\n\r\n" not in data:
                data += s.recv(65536)
            ok += data.startswith(b"HTTP/1.1 200")
        assert ok == 300
        assert time.monotonic() - t0 < 3.0
    finally:
        for s in socks:
            s.close()


def _send_deal_requests(port, n):
    req = ("GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n"
           % (DEAL, TOKEN1)).encode()
    socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(n)]
    for s in socks:
        s.sendall(req)
    return socks


def test_latency_is_a_floor_on_every_server_thread():
    """Each server thread runs its own delay timer: with 3 threads and 30 connections, no
    answer comes before the injected latency, and none is held much past it."""
    s = Sandbox(args=["--threads", "3", "--latency-ms", "120", "--hubspot-rate-10s", "0"])
    socks = []
    try:
        t0 = time.monotonic()
        socks = _send_deal_requests(s.port, 30)
        for c in socks:
            data = b""
            while b"\r\n\r\n" not in data:
                data += c.recv(65536)
            assert data.startswith(b"HTTP/1.1 200")
            assert time.monotonic() - t0 >= 0.119
        assert time.monotonic() - t0 < 2.0
    finally:
        for c in socks:
            c.close()
        assert s.stop(signal.SIGTERM) == 0


def test_sigterm_while_requests_wait_for_latency_exits_at_once():
    """Requests suspended for a 60-s latency do not hold up shutdown: the sandbox answers
    or closes them and exits 0."""
    s = Sandbox(args=["--threads", "2", "--latency-ms", "60000", "--hubspot-rate-10s", "0"])
    socks = []
    try:
        socks = _send_deal_requests(s.port, 8)
        time.sleep(0.3)  # every request read and suspended
        t0 = time.monotonic()
        assert s.stop(signal.SIGTERM) == 0
        assert time.monotonic() - t0 < 5.0
    finally:
        for c in socks:
            c.close()


def test_environment_points_at_binary():
    assert os.path.exists(sandbox_binary())
