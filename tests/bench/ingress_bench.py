"""make bench, scenario `ingress`: signed HubSpot action requests into Kafka (issue 17).

Starts its own stack (the Kafka of KAFKA=mock|apache; Redis and the sandbox are idle
here), one `hsqb-worker ingress` with its production defaults (2 HTTP threads), and
build/ingress-load, which plays HubSpot's workflow engine: --ingress-requests distinct
execution requests, each signed v3 with the app's client secret, over
--ingress-connections keep-alive connections, closed loop. Measured: requests per second,
latency percentiles (answer time seen by the client, Kafka's acknowledgement included),
the ingress's CPU per request and RSS; then every callbackId answered 200 is looked up
in hsqb.actions by an independent consumer (python3-kafka): `durable` must equal `ok`.

Target (issue 17): >= 5,000 requests/s with p99 <= 20 ms on a 2-core machine, every 200
durable.
"""

import json
import os
import pathlib
import subprocess
import time

from kafka import KafkaConsumer
from kafka.structs import TopicPartition

import benchlib as bl

SECRET = "bench-app-secret"
TARGET_RPS = 5000
TARGET_P99_MS = 20.0


def durable_ids(bootstrap, topic, want, timeout=120):
    """The subset of `want` (callbackIds) found as event ids in `topic`."""
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                      consumer_timeout_ms=5000, max_partition_fetch_bytes=8 << 20)
    tps = [TopicPartition(topic, p) for p in (c.partitions_for_topic(topic) or ())]
    c.assign(tps)
    c.seek_to_beginning(*tps)
    ends = c.end_offsets(tps)
    found = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for m in c:
            try:
                found.add(json.loads(m.value)["id"])
            except (ValueError, KeyError, TypeError, RecursionError):
                pass
            if all(c.position(tp) >= ends[tp] for tp in tps):
                break
        if all(c.position(tp) >= ends[tp] for tp in tps):
            break
    c.close()
    return found & want


def run(a, logdir):
    stack = bl.Stack(a.ingress_partitions, logdir).start()
    port = bl.free_port()
    mport = bl.free_port()
    env = dict(os.environ)
    env.update({k: v for k, v in stack.env.items() if k.startswith("HSQB_")})
    public = "http://127.0.0.1:%d" % port
    env.update({"HSQB_INGRESS_LISTEN": "127.0.0.1:%d" % port, "HSQB_INGRESS_PUBLIC_URL": public,
                "HSQB_INGRESS_CLIENT_SECRETS": SECRET, "HSQB_LOG_LEVEL": "warn",
                "HSQB_METRICS_LISTEN": "127.0.0.1:%d" % mport})
    log = open(pathlib.Path(logdir) / "ingress.log", "w")
    proc = subprocess.Popen([str(bl.build_dir() / "hsqb-worker"), "ingress"], env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if bl.http_get("http://127.0.0.1:%d/readyz" % mport, timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        load = [str(bl.build_dir() / "ingress-load"), "--url",
                public + "/hubspot/actions/create_invoice", "--public-url", public,
                "--secret", SECRET, "--connections", str(a.ingress_connections)]
        # warm-up: connections, the producer's batches, the broker's page cache
        subprocess.run(load + ["--requests", "2000", "--run", "warm"], check=True,
                       capture_output=True, timeout=120)
        okfile = pathlib.Path(logdir) / "ingress-ok.txt"
        cpu0 = bl.proc_stats(proc.pid)["cpu_s"]
        k0 = stack.proc_stats().get("kafka", {}).get("cpu_s", 0.0)
        r = subprocess.run(load + ["--requests", str(a.ingress_requests), "--run", "main",
                                   "--ok-file", str(okfile), "--rate", str(a.ingress_rate)],
                           check=True, capture_output=True, text=True, timeout=600)
        st = bl.proc_stats(proc.pid)
        k1 = stack.proc_stats().get("kafka", {}).get("cpu_s", 0.0)
        out = json.loads(r.stdout.strip().splitlines()[-1])
        ok_ids = set(okfile.read_text().split())
        found = durable_ids(stack.env["KAFKA_BOOTSTRAP"], bl.TOPIC_ACTIONS, ok_ids)
        out.update({
            "kafka": bl.kafka_label(stack.kafka),
            "connections": a.ingress_connections,
            "durable": len(found),
            "ingress_cpu_ms_per_req": round((st["cpu_s"] - cpu0) * 1000.0 / out["sent"], 4),
            "kafka_cpu_ms_per_req": round((k1 - k0) * 1000.0 / out["sent"], 4),
            "ingress_rss_mb": round(st["rss_mb"], 1),
            "target": {"rps": TARGET_RPS, "p99_ms": TARGET_P99_MS},
        })
        out["meets_target"] = (out["rps"] >= TARGET_RPS and out["p99_ms"] <= TARGET_P99_MS
                               and out["durable"] == out["ok"] == out["sent"])
        return out
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        stack.stop()


def one_line(r):
    return ("ingress: %(rps).0f req/s, p50 %(p50_ms).1f ms, p99 %(p99_ms).1f ms, max "
            "%(max_ms).1f ms; %(ok)d/%(sent)d answered 200, %(durable)d durable; ingress "
            "%(ingress_cpu_ms_per_req).3f ms CPU/request, %(ingress_rss_mb).0f MB" % r)
