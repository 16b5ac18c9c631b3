#!/usr/bin/python3
"""Load test for hsqb-sandbox (stdlib only).

Starts $BUILD/hsqb-sandbox (BUILD defaults to "build") on an ephemeral port with the seed
data, then runs two phases and prints one summary line per phase plus the sandbox's
whole-process CPU and RSS:

  throughput  --conns keep-alive connections, no injected latency, for --seconds: a mix
              of the worker's HubSpot reads (deal + associations, contact, line-item batch
              read) and a v4 association read. Target: >= 3,000 requests/s.
  hold        --hold-conns (500) keep-alive connections with --latency-ms (50) injected
              latency, each sending back-to-back requests for --seconds. Target: every
              connection served, p50 close to the injected latency.

The client is asyncio over raw sockets in --procs worker processes, so the measurement is
not capped by Python's http.client. Exit status 1 when a target is missed.

  /usr/bin/python3 tests/bench/sandbox_load.py [--seconds 5] [--conns 32] [--procs 2]
"""
import argparse
import asyncio
import multiprocessing
import os
import pathlib
import subprocess
import sys
import tempfile
import time
import json
import http.client

ROOT = pathlib.Path(__file__).resolve().parents[2]
TOKEN = "pat-na1-11111111-1111-4111-8111-111111111111"
BATCH = json.dumps({"properties": ["name", "quantity", "price", "amount", "hs_sku"],
                    "inputs": [{"id": "7001"}, {"id": "7002"}, {"id": "7003"}]})


def build_requests():
    def get(path):
        return ("GET %s HTTP/1.1\r\nHost: sandbox\r\nAuthorization: Bearer %s\r\n\r\n"
                % (path, TOKEN)).encode()

    post = ("POST /crm/v3/objects/line_items/batch/read HTTP/1.1\r\nHost: sandbox\r\n"
            "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
            "Content-Length: %d\r\n\r\n%s" % (TOKEN, len(BATCH), BATCH)).encode()
    return [get("/crm/v3/objects/deals/1001?associations=contacts,line_items"),
            get("/crm/v3/objects/contacts/301?properties=firstname,lastname,email"),
            post,
            get("/crm/v4/objects/deals/1001/associations/contacts")]


async def one_conn(port, deadline, stats, reqs, offset):
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        stats["connect_errors"] += 1
        return
    i = offset
    try:
        while time.monotonic() < deadline:
            t0 = time.monotonic()
            writer.write(reqs[i % len(reqs)])
            i += 1
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            clen = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    clen = int(line[15:])
            if clen:
                await reader.readexactly(clen)
            stats["lat"].append(time.monotonic() - t0)
            if status in (200, 207):
                stats["ok"] += 1
            else:
                stats["bad"] += 1
    except (OSError, asyncio.IncompleteReadError, ValueError):
        stats["io_errors"] += 1
    finally:
        writer.close()


async def run_conns(port, nconns, seconds, offset):
    stats = {"ok": 0, "bad": 0, "io_errors": 0, "connect_errors": 0, "lat": []}
    reqs = build_requests()
    # Open every connection first so "hold" really holds them all at once.
    deadline = time.monotonic() + seconds
    await asyncio.gather(*(one_conn(port, deadline, stats, reqs, offset + k)
                           for k in range(nconns)))
    return stats


def proc_main(args):
    port, nconns, seconds, offset, q = args
    q.put(asyncio.run(run_conns(port, nconns, seconds, offset)))


def proc_cpu_rss(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    rss = hwm = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    return cpu, rss, hwm


def admin(port, method, path, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request(method, path, body=json.dumps(body) if body is not None else None)
    r = c.getresponse()
    r.read()
    c.close()
    assert r.status in (200, 204), (path, r.status)


def start_sandbox(*extra):
    """$BUILD/hsqb-sandbox on an ephemeral port, seeded from tests/sandbox/seed, with the
    extra flags: (Popen, port)."""
    build = pathlib.Path(os.environ.get("BUILD", "build"))
    binary = (build if build.is_absolute() else ROOT / build) / "hsqb-sandbox"
    port_file = os.path.join(tempfile.mkdtemp(prefix="sandbox-load-"), "port")
    proc = subprocess.Popen([str(binary), "--listen", "127.0.0.1:0", "--port-file", port_file,
                             "--seed", str(ROOT / "tests/sandbox/seed")] + list(extra),
                            stdout=subprocess.DEVNULL)
    for _ in range(500):
        if os.path.exists(port_file):
            break
        time.sleep(0.01)
    with open(port_file) as f:
        return proc, int(f.read())


def phase(name, port, pid, nconns, seconds, procs):
    per = [nconns // procs + (1 if k < nconns % procs else 0) for k in range(procs)]
    q = multiprocessing.Queue()
    cpu0, _, _ = proc_cpu_rss(pid)
    t0 = time.monotonic()
    ps = [multiprocessing.Process(target=proc_main, args=((port, n, seconds, k * 1000, q),))
          for k, n in enumerate(per) if n]
    for p in ps:
        p.start()
    results = [q.get(timeout=seconds + 60) for _ in ps]
    for p in ps:
        p.join()
    wall = time.monotonic() - t0
    cpu1, rss, hwm = proc_cpu_rss(pid)
    lat = sorted(x for r in results for x in r["lat"])
    tot = {k: sum(r[k] for r in results) for k in ("ok", "bad", "io_errors", "connect_errors")}
    n = len(lat)
    pct = (lambda p: lat[min(n - 1, int(p * n))] * 1000 if n else 0.0)
    rate = tot["ok"] / seconds
    print("%-10s conns=%d secs=%d ok=%d bad=%d io_err=%d conn_err=%d  %.0f req/s  "
          "p50=%.1fms p99=%.1fms max=%.1fms  sandbox cpu=%.0f%% of one core  rss=%dMB hwm=%dMB"
          % (name, nconns, seconds, tot["ok"], tot["bad"], tot["io_errors"],
             tot["connect_errors"], rate, pct(0.5), pct(0.99), lat[-1] * 1000 if n else 0,
             100.0 * (cpu1 - cpu0) / wall, rss // 1024, hwm // 1024))
    return rate, tot, pct(0.5)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--conns", type=int, default=32)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2, help="sandbox --threads")
    ap.add_argument("--hold-conns", type=int, default=500)
    ap.add_argument("--latency-ms", type=int, default=50)
    ap.add_argument("--min-rps", type=float, default=3000.0)
    args = ap.parse_args()

    proc, port = start_sandbox("--threads", str(args.threads), "--log-entries", "10000")
    try:
        print("hsqb-sandbox pid %d on port %d, %d threads, %d CPUs" %
              (proc.pid, port, args.threads, os.cpu_count()))
        admin(port, "POST", "/_sandbox/config", {"hubspot_rate_10s": 0,
                                                  "hubspot": {"daily_limit": 0}})
        rate, tot, _ = phase("throughput", port, proc.pid, args.conns, args.seconds,
                             args.procs)
        failed = rate < args.min_rps or tot["bad"] or tot["io_errors"]
        admin(port, "POST", "/_sandbox/config", {"latency_ms": args.latency_ms})
        _, tot, p50 = phase("hold", port, proc.pid, args.hold_conns, args.seconds, args.procs)
        failed = failed or tot["bad"] or tot["io_errors"] or tot["connect_errors"]
        failed = failed or p50 > args.latency_ms * 3
        print("result: %s" % ("FAIL" if failed else "PASS"))
        return 1 if failed else 0
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
