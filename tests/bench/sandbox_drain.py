#!/usr/bin/python3
"""The sandbox's own cost under the bench's rate drain, without Kafka or the worker.

Starts $BUILD/hsqb-sandbox (BUILD defaults to "build") as `make bench` configures it
(request log sized 12 x events + 20,000 with 80 body bytes, the bench's latency and
jitter, rate limits lifted), seeds bench.py's generated workload (benchlib.Workload, same
--seed, --events and --tenants), creates what the worker creates on the first use of a
contact or a missing product, then replays every event the way the worker does: the
object with its associations, one batch read of its line items, the first contact, and
one QBO create (invoice, estimate or sales receipt, with a requestid), over --conns
keep-alive connections. At the end it reads the whole request log as the bench does.

Prints the sandbox's CPU ms per event and its peak RSS (VmHWM) after seeding, after the
drain and after reading the log, so a change to the sandbox can be judged in a minute
instead of a full `make bench` (tests/bench/README.md, "The sandbox").

  BUILD=build /usr/bin/python3 tests/bench/sandbox_drain.py [--events 20000] [--conns 32]

The default arrival is a steady stream (each connection sends its next request when the
last is answered). `--rate 117 --burst 63 --events 6000` is the bench's instead: the rate
drain's steady throughput, one portal's HubSpot window of events let go at once.
"""
import argparse
import asyncio
import base64
import json
import os
import pathlib
import sys
import time
import urllib.parse
import urllib.request
import uuid

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import bench  # noqa: E402
import benchlib as bl  # noqa: E402
from sandbox_load import proc_cpu_rss, start_sandbox  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
DOC_PATH = {"create_invoice": "invoice", "create_estimate": "estimate",
            "create_sales_receipt": "salesreceipt"}


def http_request(method, path, token, body=None):
    head = "%s %s HTTP/1.1\r\nHost: sandbox\r\nAuthorization: Bearer %s\r\n" % (method, path, token)
    if body is None:
        return (head + "\r\n").encode()
    raw = json.dumps(body, separators=(",", ":")).encode()
    return (head + "Content-Type: application/json\r\nAccept: application/json\r\n"
            "Content-Length: %d\r\n\r\n" % len(raw)).encode() + raw


async def exchange(reader, writer, raw):
    writer.write(raw)
    head = await reader.readuntil(b"\r\n\r\n")
    clen = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            clen = int(line[15:])
    body = await reader.readexactly(clen) if clen else b""
    return int(head[9:12]), body


class Realm:
    """What the worker would have resolved in one realm: customer and item ids."""

    def __init__(self, tenant, access_token):
        self.t, self.token = tenant, access_token
        self.customers, self.items, self.term = {}, {}, None


def event_requests(ev, realm, li_ids):
    t = ev["tenant"]
    plural = "deals" if ev["otype"] == "DEAL" else "quotes"
    reqs = [http_request("GET", "/crm/v3/objects/%s/%d?associations=contacts,line_items"
                         % (plural, ev["oid"]), t.token),
            http_request("POST", "/crm/v3/objects/line_items/batch/read", t.token,
                         {"properties": ["name", "quantity", "price", "amount", "hs_sku",
                                         "hs_product_id"],
                          "inputs": [{"id": i} for i in li_ids]}),
            http_request("GET", "/crm/v3/objects/contacts/%d?properties=firstname,lastname,email"
                         % ev["first_contact"], t.token)]
    lines = []
    for pid in ev["products"]:
        _, sku, name, price, _ = t.products[pid - 500001]
        lines.append({"DetailType": "SalesItemLineDetail", "Amount": price / 100.0,
                      "Description": name,
                      "SalesItemLineDetail": {"ItemRef": {"value": realm.items[pid]},
                                              "Qty": 1, "UnitPrice": price / 100.0}})
    doc = {"CustomerRef": {"value": realm.customers[ev["first_contact"]]},
           "TxnDate": time.strftime("%Y-%m-%d"), "PrivateNote": "hsqb bench %d" % ev["oid"],
           "BillEmail": {"Address": "c%d@t%d.example" % (ev["first_contact"], t.i)},
           "Line": lines}
    if ev["action"] == "create_invoice":
        doc["SalesTermRef"] = {"value": realm.term}
    path = "/v3/company/%s/%s?requestid=%s&minorversion=75" % (
        t.realm, DOC_PATH[ev["action"]], uuid.uuid4())
    reqs.append(http_request("POST", path, realm.token, doc))
    return reqs


async def drain(port, jobs, nconns, rate=0.0, burst=1):
    """Every job over nconns connections, each as fast as answers come; with rate, the
    jobs are released burst at a time, burst / rate seconds apart (the bench's arrival:
    its HubSpot limiter lets a portal's window of calls go at once)."""
    bad = []
    queue = asyncio.Queue()

    async def release():
        t0 = time.monotonic()
        for n, i in enumerate(range(0, len(jobs), burst)):
            await asyncio.sleep(max(0.0, t0 + n * burst / rate - time.monotonic()))
            for job in jobs[i:i + burst]:
                queue.put_nowait(job)
        for _ in range(nconns):
            queue.put_nowait(None)

    async def one():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while (job := await queue.get()) is not None:
                for raw in job:
                    status, body = await exchange(reader, writer, raw)
                    if status not in (200, 207):
                        bad.append((status, body[:200]))
        finally:
            writer.close()
    if rate <= 0:
        for job in jobs:
            queue.put_nowait(job)
        for _ in range(nconns):
            queue.put_nowait(None)
        await asyncio.gather(*(one() for _ in range(nconns)))
    else:
        await asyncio.gather(release(), *(one() for _ in range(nconns)))
    return bad


def qbo_setup(sb, wl, intuit_client):
    """Per realm: an access token, the Net 30 term, a customer per contact and an item per
    product (seeded ones looked up, missing ones created), as the worker's first uses do."""
    realms = {}
    for t in wl.tenants:
        tok = oauth_token(sb, t, intuit_client)
        r = realms[t.i] = Realm(t, tok)
        r.term = qbo(sb, tok, "GET", "/v3/company/%s/query?query=%s" % (
            t.realm, "select%20*%20from%20Term%20where%20Name%3D%27Net%2030%27"))[
            "QueryResponse"]["Term"][0]["Id"]
        for cid in t.contacts:
            c = qbo(sb, tok, "POST", "/v3/company/%s/customer" % t.realm,
                    {"DisplayName": "Contact %d-%d" % (t.i, cid)})
            r.customers[cid] = c["Customer"]["Id"]
        for pid, sku, name, price, seeded in t.products:
            if seeded:
                q = qbo(sb, tok, "GET", "/v3/company/%s/query?query=%s" % (
                    t.realm, "select%%20*%%20from%%20Item%%20where%%20Sku%%3D%%27%s%%27" % sku))
                r.items[pid] = q["QueryResponse"]["Item"][0]["Id"]
            else:
                c = qbo(sb, tok, "POST", "/v3/company/%s/item" % t.realm,
                        {"Name": name, "Sku": sku, "Type": "Service", "UnitPrice": price / 100.0,
                         "IncomeAccountRef": {"value": "79"}})
                r.items[pid] = c["Item"]["Id"]
    return realms


def qbo(sb, token, method, path, body=None):
    req = urllib.request.Request(sb.base + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": "Bearer " + token,
                                          "Accept": "application/json",
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def oauth_token(sb, t, client):
    basic = base64.b64encode(("%s:%s" % (client["client_id"], client["client_secret"])).encode())
    req = urllib.request.Request(
        sb.base + "/oauth2/v1/tokens/bearer", method="POST",
        data=urllib.parse.urlencode({"grant_type": "refresh_token",
                                     "refresh_token": t.refresh}).encode(),
        headers={"Authorization": "Basic " + basic.decode(), "Accept": "application/json",
                 "Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())["access_token"]


def user_sys(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def report(label, pid, cpu0, events, us0=(0.0, 0.0)):
    cpu, rss, hwm = proc_cpu_rss(pid)
    us = user_sys(pid)
    per = (" %.3f ms CPU/event (user %.3f, sys %.3f)," % (
        1000.0 * (cpu - cpu0) / events, 1000.0 * (us[0] - us0[0]) / events,
        1000.0 * (us[1] - us0[1]) / events)) if events else ""
    print("%-12s sandbox%s %.1f s CPU in all, RSS %d MB, peak RSS %d MB, load average %s"
          % (label, per, cpu, rss // 1024, hwm // 1024, " ".join(map(str, bl.loadavg()))),
          flush=True)
    return cpu


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=20000)
    ap.add_argument("--tenants", type=int, default=20)
    ap.add_argument("--conns", type=int, default=32, help="keep-alive connections")
    ap.add_argument("--threads", type=int, default=2, help="sandbox --threads")
    ap.add_argument("--latency-ms", type=int, default=20)
    ap.add_argument("--jitter-ms", type=int, default=10)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--only", choices=("hubspot", "qbo"),
                    help="send only that vendor's requests of each event (where the CPU goes)")
    ap.add_argument("--rate", type=float, default=0.0,
                    help="events/s, released --burst at a time (default: as fast as answered)")
    ap.add_argument("--burst", type=int, default=63,
                    help="events released at once with --rate (63: one portal's 190 calls / 3)")
    ap.add_argument("--keep", action="store_true",
                    help="leave the sandbox running at the end (prints its pid and port)")
    args = ap.parse_args()
    bargs = bench.parse_args(["--events", str(args.events), "--tenants", str(args.tenants),
                              "--seed", str(args.seed)])
    wl = bl.Workload(bargs, args.events, args.tenants, args.seed)

    proc, port = start_sandbox("--threads", str(args.threads))
    try:
        sb = bl.Sandbox("http://127.0.0.1:%d" % port, proc.pid)
        print("hsqb-sandbox pid %d, port %d, %d events over %d tenants, %d connections, "
              "latency %d+0..%d ms" % (proc.pid, port, args.events, args.tenants, args.conns,
                                       args.latency_ms, args.jitter_ms), flush=True)
        sb.config({"log_entries": min(1000000, 12 * args.events + 20000), "log_body_max": 80,
                   "hubspot_rate_10s": 0, "qbo_rate_min": 0, "qbo_concurrent": 0})
        wl.seed(sb, bl.base_realm())
        client = json.loads((bl.SEED_DIR / "qbo.json").read_text())["intuit_oauth"]["clients"][0]
        realms = qbo_setup(sb, wl, client)
        report("seeded", proc.pid, 0, 0)
        li_of = {}
        for t in wl.tenants:
            for kind in ("deals", "quotes"):
                for o in wl.objects[t.i][kind]:
                    li_of[(t.i, int(o["id"]))] = o["associations"]["line_items"]
        jobs = [event_requests(ev, realms[ev["tenant"].i], li_of[(ev["tenant"].i, ev["oid"])])
                for ev in wl.events]
        if args.only:
            jobs = [j[:3] if args.only == "hubspot" else j[3:] for j in jobs]
        sb.config({"latency_ms": args.latency_ms, "jitter_ms": args.jitter_ms})
        cpu0, _, _ = proc_cpu_rss(proc.pid)
        us0 = user_sys(proc.pid)
        t0 = time.monotonic()
        bad = asyncio.run(drain(port, jobs, args.conns, args.rate, max(1, args.burst)))
        wall = time.monotonic() - t0
        report("drained", proc.pid, cpu0, len(jobs), us0)
        print("             %.1f s, %.0f events/s, %d non-2xx answers%s" % (
            wall, len(jobs) / wall, len(bad), (": first %r" % (bad[0],)) if bad else ""))
        cpu1, _, _ = proc_cpu_rss(proc.pid)
        entries, evicted = sb.requests()
        report("log read", proc.pid, cpu1, 0)
        print("             %d log entries, %d evicted" % (len(entries), evicted))
        if args.keep:
            print("left running: pid %d port %d" % (proc.pid, port))
            proc = None
        return 1 if bad else 0
    finally:
        if proc:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
