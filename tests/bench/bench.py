#!/usr/bin/python3
"""make bench: how close hsqb-worker runs to the limit the APIs allow (issue 7).

Each scenario starts its own dev stack (tests/stack/stack, topics sized for the run),
seeds the sandbox with a generated workload (tenants = HubSpot portal + QBO realm pairs,
deals/quotes with 1-10 line items and 1-3 contacts from a per-tenant pool, products from a
per-tenant catalogue of which a share is missing in QBO, a mix of invoice / estimate /
sales receipt actions), stores credentials, sets the sandbox's latency and rate limits,
and runs `hsqb-worker run` replicas against it.

Scenarios (--scenarios, comma list; default all of them):
  rate      drain: pre-produce --events, start --replicas, measure until the last result.
            Real limits: QBO 500/min + 10 concurrent per realm, HubSpot 190/10 s per portal.
  baseline  the same workload (--baseline-events of it) with one event in flight per
            partition (worker.max_in_flight_per_partition=1): what a plain consumer loop does.
            Time-boxed: throughput over --baseline-seconds, however far it got.
  latency   rate limits lifted, --lat-latency-ms per call, worker slots raised as
            deploy/README.md recommends (10 x realms); first a sweep over --sweep-threads
            (the plot), then the main point with --lat-events.
  open      open loop at the real limits: --open-rate events/s for --open-seconds.
  ingress   `hsqb-worker ingress` under signed HubSpot action requests (build/ingress-load,
            --ingress-requests over --ingress-connections): requests/s, latency
            percentiles, CPU per request, and every 200 found durable in hsqb.actions
            (ingress_bench.py).

KAFKA=apache in the environment (`make bench KAFKA=apache`) runs every stack on Apache
Kafka (KRaft, one broker+controller JVM; `make kafka-dist`) instead of kafka-mock; the
Kafka's CPU and RSS are then the broker's.

Output: a table on stdout, and tests/bench/out/{bench.json,bench.md,bench.png,*.log}.
README.md in this directory explains every column.

  /usr/bin/python3 tests/bench/bench.py [--quick] [--events 20000] [--tenants 20] ...
"""

import argparse
import json
import os
import resource
import pathlib
import shutil
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import benchlib as bl  # noqa: E402
import ingress_bench  # noqa: E402
import report  # noqa: E402

OUT = bl.ROOT / "tests" / "bench" / "out"


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                                 epilog="Environment: KAFKA=mock (default: kafka-mock) or "
                                        "apache (Apache Kafka in KRaft mode; make kafka-dist); "
                                        "BUILD (default build) where the programs are.")
    a = ap.add_argument
    a("--quick", action="store_true", help="smoke test: a few hundred events, ~1-2 minutes")
    a("--scenarios", default="rate,baseline,latency,open,ingress")
    a("--ingress-requests", type=int, default=50000, help="ingress scenario: signed requests")
    a("--ingress-connections", type=int, default=64,
      help="ingress scenario: keep-alive connections of the load generator")
    a("--ingress-rate", type=float, default=0,
      help="ingress scenario: requests/s offered (0 = closed loop, as fast as answered)")
    a("--ingress-partitions", type=int, default=12, help="ingress scenario: hsqb.actions partitions")
    a("--events", type=int, default=20000, help="rate scenario: events drained")
    a("--tenants", type=int, default=20, help="portal/realm pairs")
    a("--replicas", type=int, default=2)
    a("--threads", type=int, default=16, help="worker.threads per replica (rate, baseline, open)")
    a("--partitions", type=int, default=6, help="at least this many on hsqb.actions/results")
    a("--contacts", type=int, default=40, help="contacts per tenant")
    a("--products", type=int, default=40, help="products per tenant")
    a("--missing-products", type=float, default=0.1, help="share of products absent in QBO")
    a("--min-lines", type=int, default=1)
    a("--max-lines", type=int, default=10)
    a("--quote-share", type=float, default=0.2, help="share of events on quotes (else deals)")
    a("--mix", default="invoice=2,estimate=1,sales_receipt=1", help="action weights")
    a("--latency-ms", type=int, default=20, help="sandbox fixed latency per API call")
    a("--jitter-ms", type=int, default=10, help="plus uniform 0..N ms (20+0..10 = 25 +- 5)")
    a("--qbo-rate-min", type=int, default=500)
    a("--qbo-concurrent", type=int, default=10)
    a("--hubspot-rate-10s", type=int, default=190)
    a("--time-limit", type=float, default=300.0,
      help="rate scenario: stop waiting after this many seconds (keeps make bench < 10 min)")
    a("--cold", action="store_true",
      help="rate scenario from cold caches (no warm-up): the first minute's customer and "
           "item creates then spend the QBO budget and QBO binds until its window turns")
    a("--baseline-events", type=int, default=3000)
    a("--baseline-seconds", type=float, default=30.0)
    a("--lat-events", type=int, default=6000)
    a("--lat-latency-ms", type=int, default=50)
    a("--lat-threads", type=int, default=0,
      help="worker.threads per replica in the latency scenario (0: 10 x tenants / replicas)")
    a("--sweep-threads", default="8,24,50",
      help="worker.threads per replica for the plot (the latency scenario's point is added)")
    a("--sweep-seconds", type=float, default=8.0, help="target length of a sweep point")
    a("--open-rate", type=float, default=0.0, help="events/s (0: half the rate bound)")
    a("--open-seconds", type=float, default=25.0)
    a("--seed", type=int, default=7)
    a("--no-alloc-count", action="store_true",
      help="do not preload the allocation counter (BUILD/alloc-count.so) into the replicas")
    a("--profile", action="store_true",
      help="perf record the first replica during the rate and latency drains "
           "(profile-SCENARIO.txt and perf-SCENARIO.data in the output directory)")
    a("--set", action="append", default=[], metavar="KEY=VALUE",
      help="worker setting for every scenario, e.g. --set worker.max_in_flight=2048")
    a("--baseline-set", action="append", default=[], metavar="KEY=VALUE",
      help="worker setting for the baseline only")
    a("--out", default=str(OUT))
    args = ap.parse_args(argv)
    if args.quick:
        given = set(x.split("=")[0] for x in argv)
        quick = {"--events": 300, "--tenants": 4, "--baseline-events": 200, "--lat-events": 500,
                 "--baseline-seconds": 10.0, "--time-limit": 40.0,
                 "--sweep-threads": "4", "--sweep-seconds": 3.0, "--open-seconds": 10.0,
                 "--contacts": 10, "--products": 15, "--scenarios": "rate,baseline,latency",
                 "--cold": True}
        for k, v in quick.items():
            if k not in given:
                setattr(args, k[2:].replace("-", "_"), v)
    if args.lat_threads <= 0:
        args.lat_threads = max(1, min(256, (10 * args.tenants + args.replicas - 1) // args.replicas))
    return args


# ---- one stack, one workload ----------------------------------------------------------------

class Env:
    """A stack seeded with a workload, credentials stored, a collector running."""

    def __init__(self, args, name, n_events, limits, logdir):
        self.args, self.name, self.limits = args, name, limits
        self.logdir = logdir
        self.workload = bl.Workload(args, n_events, args.tenants, args.seed)
        self.partitions = bl.partitions_for(n_events, args.partitions)
        self.stack = bl.Stack(self.partitions, logdir)
        self.collector = self.producer = None
        self.replicas = []
        self.setup_s = 0.0
        self.seen = None  # what earlier runs on this stack resolved (Workload.minimum_calls)

    def __enter__(self):
        t0 = time.monotonic()
        try:
            self.stack.start()
            sb = self.stack.sandbox
            sb.config(dict(self.limits, log_entries=min(1000000, 12 * len(self.workload.events)
                                                        + 20000), log_body_max=80))
            self.workload.seed(sb, bl.base_realm())
            self.worker_env_base = {k: v for k, v in self.stack.env.items()
                                    if k.startswith("HSQB_")}
            env = dict(bl_env(), **self.worker_env_base)
            bl.store_credentials(env, self.workload.tenants)
            self.collector = bl.Collector(self.stack.env["KAFKA_BOOTSTRAP"])
            self.collector.start()
            self.collector.ready.wait(30)
            if self.collector.error:
                raise RuntimeError("collector: %r" % self.collector.error)
            self.producer = bl.Producer(self.stack.env["KAFKA_BOOTSTRAP"])
        except BaseException:
            self.__exit__(None, None, None)
            raise
        self.setup_s = time.monotonic() - t0
        return self

    def __exit__(self, *exc):
        self.stop_replicas()
        if self.collector:
            self.collector.stop()
        if self.producer:
            try:
                self.producer.close()
            except Exception:  # noqa: BLE001
                pass
        self.stack.stop()

    def worker_env(self, worker_settings):
        env = dict(bl_env(), **self.worker_env_base)
        env.update({"HSQB_KAFKA_GROUP_ID": "hsqb-bench", "HSQB_LOG_LEVEL": "info",
                    "HSQB_KAFKA__SESSION_TIMEOUT_MS": "6000",
                    "HSQB_KAFKA__HEARTBEAT_INTERVAL_MS": "1000"})
        for k, v in worker_settings.items():
            env["HSQB_" + k.upper().replace(".", "_")] = str(v)
        return env

    def start_replicas(self, n, worker_settings, tag):
        # A fresh consumer group per run, starting where the log ends now (committed by
        # us): no stale member of the previous run's group can stall the first rebalance.
        group = "hsqb-bench-%s" % tag
        bl.commit_log_end(self.stack.env["KAFKA_BOOTSTRAP"], group, self.end_offsets)
        env = self.worker_env(dict(worker_settings, **{"kafka.group.id": group}))
        self.replicas = [bl.Replica("%s-%s-w%d" % (self.name, tag, i + 1), env, self.logdir).start()
                         for i in range(n)]
        for r in self.replicas:
            r.wait_up()

    def stop_replicas(self):
        for r in self.replicas:
            r.final = r.final or bl.proc_stats(r.pid)
            r.stop()
        self.replicas = []

    def mark_log_end(self):
        """Remember where the input topics end (before this run produces)."""
        self.end_offsets = bl.log_end(self.stack.env["KAFKA_BOOTSTRAP"])

    def produce(self, events, tag):
        ids = []
        for seq, ev in enumerate(events):
            eid, key, value = bl.event_message(ev, seq, tag)
            self.producer.send(eid, key, value)
            ids.append(eid)
        self.producer.flush()
        return ids


def self_cpu():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def bl_env():
    return {k: v for k, v in os.environ.items() if not k.startswith("HSQB_")}


# ---- measuring one run ------------------------------------------------------------------------

class Monitor(threading.Thread):
    """Samples every replica's hsqb_in_flight once a second."""

    def __init__(self, replicas):
        super().__init__(daemon=True)
        self.replicas = replicas
        self.max_in_flight = 0  # of all replicas together
        self.max_in_flight_one = 0  # of the fullest replica
        self.halt = threading.Event()

    def run(self):
        while not self.halt.wait(1.0):
            total = 0
            for r in self.replicas:
                n = int(bl.metric_sum(r.metrics(), "hsqb_in_flight"))
                self.max_in_flight_one = max(self.max_in_flight_one, n)
                total += n
            self.max_in_flight = max(self.max_in_flight, total)

    def stop(self):
        self.halt.set()
        self.join(5)


def wait_settled(env, timeout=40, quiet=1.5):
    """Until every replica holds partitions and the assignment stayed put for `quiet` s."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        cur = tuple(int(bl.metric_sum(r.metrics(), "hsqb_partitions_assigned"))
                    for r in env.replicas)
        if cur != last:
            last, since = cur, time.monotonic()
        elif all(x > 0 for x in cur) and time.monotonic() - since >= quiet:
            return
        time.sleep(0.2)
    print("  (the consumer group did not settle within %ds: %s)" % (timeout, last), flush=True)


def wait_results(env, ids, timeout, stall=45):
    """Until every id has a result, `timeout` passes, or nothing arrives for `stall` s.
    The collector is held meanwhile (benchlib.Collector): progress is the count of records
    the results and DLQ topics gained, and the records are read once that count says the
    run is over (or a limit passed). Duplicates (a re-published result) can make the count
    run ahead: then the collector reads on until every id is there."""
    deadline = time.monotonic() + timeout
    last_n, last_change = -1, time.monotonic()
    idset = set(ids)
    col = env.collector
    ok = False
    while time.monotonic() < deadline:
        ends = col.ends()
        n = sum(ends.values()) - env.results0
        if n >= len(idset):
            col.catch_up(ends)
            if count_ids(col, idset) >= len(idset):
                ok = True
                break
        if n != last_n:
            last_n, last_change = n, time.monotonic()
        elif time.monotonic() - last_change > stall:
            break
        for r in env.replicas:
            if not r.alive():
                col.catch_up(col.ends())
                raise RuntimeError("%s died (exit %s); see %s" % (r.name, r.proc.poll(), env.logdir))
        time.sleep(0.2)
    if not ok:
        col.catch_up(col.ends())
        ok = count_ids(col, idset) >= len(idset)
    return ok


def count_ids(col, idset):
    return col.count(idset) if len(idset) < 50000 else col.count()


def hold_collector(env):
    """Before a measured run produces: where the results topics end, and the collector held."""
    env.collector.hold()
    env.results0 = sum(env.collector.ends().values())


def measure(env, ids, events, sent, t_wall0, t_wall1, setting, extra=None):
    """Everything the report needs about one run, from the collector, /proc, the
    replicas' /metrics and the sandbox's request log."""
    a = env.args
    res = env.collector.snapshot()
    rows = [(res[i][0], i, res[i]) for i in ids if i in res]
    rows.sort()
    done = len(rows)
    out = {"events": len(ids), "completed": done, "tenants": a.tenants,
           "replicas": setting["replicas"], "threads": setting["threads"],
           "max_in_flight_per_partition": setting.get("per_partition", 256),
           "partitions": env.partitions, "loadavg": bl.loadavg(), "setup_s": round(env.setup_s, 1)}
    out.update(extra or {})
    if not rows:
        return out
    with open(env.logdir / ("%s-%s-events.csv" % (env.name, setting.get("tag", "run"))), "w") as f:
        f.write("input_id,input_ts_ms,result_ts_ms,status,duration_ms,code\n")
        for ts, i, r in rows:
            f.write("%s,%s,%s,%s,%s,%s\n" % (i, sent.get(i), ts, r[1], r[2], r[3] or ""))
    statuses = {}
    for _, _, r in rows:
        key = r[1] if r[1] == "succeeded" else "%s:%s" % (r[1], r[3])
        statuses[key] = statuses.get(key, 0) + 1
    out["outcomes"] = statuses
    t_first, t_last = rows[0][0], rows[-1][0]
    span = max(0.001, (t_last - t_first) / 1000.0)
    out["first_to_last_s"] = round(span, 2)
    out["throughput_whole"] = round((done - 1) / span, 2) if done > 1 else 0.0
    # Steady state: skip the window of the binding limit at the start (HubSpot 10 s, QBO
    # 60 s, none when concurrency binds), at most a quarter of the run.
    bounds = compute_bounds(env, setting, events, seen=env.seen)
    warm_s = {"hubspot": 10.0, "qbo": 60.0}.get(bounds["binding"], 0.0)
    warm_s = min(warm_s, span / 4)
    t_steady = t_first + warm_s * 1000
    steady = [r for r in rows if r[0] >= t_steady]
    st_span = max(0.001, (t_last - steady[0][0]) / 1000.0) if steady else 0.001
    out["steady_from_s"] = round(warm_s, 1)
    out["throughput"] = round((len(steady) - 1) / st_span, 2) if len(steady) > 1 else 0.0
    # The bound for what the steady window needed: first uses attributed in completion order.
    ev_by_id = dict(zip(ids, events))
    done_events = [ev_by_id[i] for _, i, _ in rows]
    before = done_events[:done - len(steady)]
    m_all = env.workload.minimum_calls(done_events, env.seen)
    m_before = env.workload.minimum_calls(before, env.seen)
    m_steady = {k: m_all[k] - m_before[k] for k in ("hubspot", "qbo")}
    env.seen = m_all["seen"]
    sb = compute_bounds(env, setting, None, minimum=m_steady, n=len(steady))
    out["bound"] = sb
    out["bound_whole"] = bounds
    out["ratio"] = round(out["throughput"] / sb["bound"], 3) if sb["bound"] else None
    lat = sorted(r[0] - sent[i] for _, i, r in rows if i in sent)
    svc = sorted(r[2] for _, _, r in rows if r[2] is not None)
    out["latency_ms"] = {p: bl.percentile(lat, q) for p, q in (("p50", 50), ("p95", 95),
                                                                ("p99", 99))}
    out["latency_ms"]["max"] = lat[-1] if lat else None
    out["service_ms"] = {p: bl.percentile(svc, q) for p, q in (("p50", 50), ("p95", 95),
                                                                ("p99", 99))}
    # Processes: whole-process CPU (user+sys) and peak RSS.
    cpu = hwm = 0.0
    for r in env.replicas:
        s = r.final = bl.proc_stats(r.pid)
        if s:
            cpu += s["cpu_s"]
            hwm = max(hwm, s["hwm_mb"])
    out["worker_cpu_s"] = round(cpu, 2)
    out["worker_cpu_ms_per_event"] = round(1000.0 * cpu / done, 3)
    out["worker_hwm_mb"] = round(hwm, 1)
    # Allocation calls of both replicas from the group's settling to the last result.
    a1 = [r.allocs() for r in env.replicas]
    a0 = getattr(env, "allocs0", None) or []
    if a1 and None not in a1 and len(a0) == len(a1) and None not in a0:
        out["worker_allocs_per_event"] = round(sum(y - x for x, y in zip(a0, a1)) / done, 1)
    # Wake-ups: context switches of both replicas' threads over the same span.
    c1 = [r.ctx_switches() for r in env.replicas]
    c0 = getattr(env, "ctxsw0", None) or []
    if c1 and None not in c1 and len(c0) == len(c1) and None not in c0:
        out["worker_ctxsw_per_event"] = round(sum(y - x for x, y in zip(c0, c1)) / done, 1)
    # The stack: sandbox, redis and the Kafka (kafka-mock, or the broker JVMs: "kafka"
    # either way, the kind in the results' "kafka").
    for name, s in env.stack.proc_stats().items():
        out["%s_cpu_s" % name] = round(s["cpu_s"] - env.base_cpu.get(name, 0), 2)
        out["%s_hwm_mb" % name] = round(s["hwm_mb"], 1)
    out["sandbox_cpu_ms_per_event"] = round(1000.0 * out.get("sandbox_cpu_s", 0) / done, 3)
    out["bench_cpu_s"] = round(self_cpu() - env.self_cpu0, 2)
    # What the machine allows: every process of the run (replicas, stack, this load
    # generator) needs this much CPU per event; the cores cap throughput at cpus / that.
    all_cpu = cpu + sum(out.get(k, 0) for k in ("sandbox_cpu_s", "redis_cpu_s",
                                               "kafka_cpu_s", "bench_cpu_s"))
    out["all_cpu_ms_per_event"] = round(1000.0 * all_cpu / done, 3)
    out["cpu_bound"] = round(len(os.sched_getaffinity(0)) * done / all_cpu, 1) if all_cpu else None
    # Redis commands the replicas sent (INFO commandstats, minus what it had before).
    rc1 = bl.redis_commandstats(env.stack.env)
    rdelta = {k: v - env.redis_calls0.get(k, 0) for k, v in rc1.items()}
    rdelta = {k: v for k, v in rdelta.items() if v > 0 and k not in ("info",)}
    out["redis_commands_per_event"] = round(sum(rdelta.values()) / done, 2)
    out["redis_by_command_per_event"] = {k: round(v / done, 2) for k, v in
                                         sorted(rdelta.items(), key=lambda x: -x[1])}
    # Worker metrics, summed over replicas.
    wm = {}
    for r in env.replicas:
        for k, v in r.metrics().items():
            wm[k] = wm.get(k, 0.0) + v
    calls = {}
    for (name, labels), v in wm.items():
        if name == "hsqb_api_calls_total":
            d = dict(labels)
            calls[d.get("api", "?")] = calls.get(d.get("api", "?"), 0) + v
    out["worker_metrics"] = {
        "api_calls": calls,
        "429": {api: bl.metric_sum(wm, "hsqb_429_total", api=api) for api in calls},
        "ratelimit_wait_s": {api: round(bl.metric_sum(wm, "hsqb_ratelimit_wait_seconds_total",
                                                      api=api), 1) for api in calls},
        "retries": {api: bl.metric_sum(wm, "hsqb_retries_total", api=api) for api in calls}}
    # The sandbox's request log over this run.
    entries, evicted = env.stack.sandbox.requests(since=env.log_mark)
    whole = bl.analyse_log(entries)
    st = bl.analyse_log(entries, t_from_ms=steady[0][0] if steady else None)
    out["log_evicted"] = evicted
    out["calls_per_event"] = {v: round(c / done, 3) for v, c in whole["by_vendor"].items()}
    out["calls_per_event_steady"] = {v: round(c / max(1, len(steady)), 3)
                                     for v, c in st["by_vendor"].items()}
    out["minimum_per_event_steady"] = {k: round(v / max(1, len(steady)), 3)
                                       for k, v in m_steady.items()}
    out["endpoints_per_event"] = {e: round(c / done, 3) for e, c in
                                  sorted(whole["by_endpoint"].items(), key=lambda x: -x[1])}
    out["api_mean_ms"] = {v: round(x, 1) for v, x in whole["mean_ms"].items()}
    n_api = sum(c for v, c in whole["by_vendor"].items() if v in ("hubspot", "qbo"))
    n429 = sum(whole["429"].values())
    out["429"] = whole["429"]
    out["429_share"] = round(n429 / n_api, 5) if n_api else 0.0
    out["wall_s"] = round(t_wall1 - t_wall0, 1)
    return out


def compute_bounds(env, setting, events, minimum=None, n=None, seen=None):
    """The ideal throughput: min of concurrency, QBO and HubSpot bounds (events/s). The
    API bounds use the limits the sandbox enforces (none when lifted)."""
    a, lim = env.args, env.limits
    if minimum is None:
        minimum = env.workload.minimum_calls(events, seen)
        n = len(events)
    n = max(1, n)
    hs_pe, qbo_pe = minimum["hubspot"] / n, minimum["qbo"] / n
    mean_lat = (lim["latency_ms"] + lim["jitter_ms"] / 2.0) / 1000.0
    slots = setting["replicas"] * setting["threads"]
    if setting.get("per_partition"):
        slots = min(slots, env.partitions * setting["per_partition"])
    out = {"slots": slots, "hubspot_per_event": round(hs_pe, 3), "qbo_per_event": round(qbo_pe, 3),
           "mean_latency_ms": round(mean_lat * 1000, 1)}
    out["concurrency"] = round(slots / ((hs_pe + qbo_pe) * mean_lat), 1) if mean_lat else None
    qbo_min, hs_10s = lim["qbo_rate_min"], lim["hubspot_rate_10s"]
    out["qbo"] = round(a.tenants * qbo_min / 60.0 / qbo_pe, 1) if qbo_pe and qbo_min else None
    out["hubspot"] = round(a.tenants * hs_10s / 10.0 / hs_pe, 1) if hs_pe and hs_10s else None
    cands = {k: out[k] for k in ("concurrency", "qbo", "hubspot") if out[k]}
    out["binding"] = min(cands, key=cands.get)
    out["bound"] = cands[out["binding"]]
    return out


def drain(env, setting, events, tag, timeout, profile=None, stall=45):
    """Start the replicas, produce `events` at once, wait for every result, measure."""
    setting = dict(setting, tag=tag)
    env.log_mark = env.stack.sandbox.call("GET", "/_sandbox/requests",
                                          query={"since": 2 ** 62, "limit": 1})["total_recorded"]
    env.base_cpu = {n: s["cpu_s"] for n, s in env.stack.proc_stats().items()}
    env.redis_calls0 = bl.redis_commandstats(env.stack.env)
    env.self_cpu0 = self_cpu()
    env.mark_log_end()
    # Replicas first, events once the group has settled: the join of the group must not
    # count as worker time (kafka-mock sometimes needs a second rebalance,
    # tests/kafka-mock/README.md; Apache Kafka's stack sets
    # group.initial.rebalance.delay.ms=0, but a replica joining after the first one's
    # assignment still rebalances the group).
    env.start_replicas(setting["replicas"], setting["worker"], tag)
    wait_settled(env)
    hold_collector(env)
    env.allocs0 = [r.allocs() for r in env.replicas]
    env.ctxsw0 = [r.ctx_switches() for r in env.replicas]
    t0 = time.monotonic()
    ids = env.produce(events, tag)
    sent = dict(env.producer.sent)
    mon = Monitor(env.replicas)
    mon.start()
    prof = profile.start(env.replicas[0].pid) if profile else None
    ok = wait_results(env, ids, timeout, stall)
    t1 = time.monotonic()
    mon.stop()
    if prof:
        profile.stop()
    out = measure(env, ids, events, sent, t0, t1, setting,
                  {"max_in_flight": mon.max_in_flight,
                   "max_in_flight_replica": mon.max_in_flight_one, "complete": ok})
    env.stop_replicas()
    return out


def open_loop(env, setting, events, rate, seconds, tag):
    """Produce at `rate` events/s for `seconds` (replicas already running), then wait for
    the stragglers; latency percentiles at that load."""
    env.log_mark = env.stack.sandbox.call("GET", "/_sandbox/requests",
                                          query={"since": 2 ** 62, "limit": 1})["total_recorded"]
    env.base_cpu = {n: s["cpu_s"] for n, s in env.stack.proc_stats().items()}
    setting = dict(setting, tag=tag)
    env.redis_calls0 = bl.redis_commandstats(env.stack.env)
    env.self_cpu0 = self_cpu()
    env.mark_log_end()
    env.start_replicas(setting["replicas"], setting["worker"], tag)
    wait_settled(env)
    hold_collector(env)
    env.allocs0 = [r.allocs() for r in env.replicas]
    env.ctxsw0 = [r.ctx_switches() for r in env.replicas]
    mon = Monitor(env.replicas)
    mon.start()
    n = min(len(events), int(rate * seconds))
    ids = []
    t0 = time.monotonic()
    for seq in range(n):
        due = t0 + seq / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        eid, key, value = bl.event_message(events[seq], seq, tag)
        env.producer.send(eid, key, value)
        ids.append(eid)
    env.producer.flush()
    produced_s = time.monotonic() - t0
    ok = wait_results(env, ids, timeout=60 + seconds, stall=30)
    t1 = time.monotonic()
    mon.stop()
    out = measure(env, ids, events[:n], dict(env.producer.sent), t0, t1, setting,
                  {"max_in_flight": mon.max_in_flight,
                   "max_in_flight_replica": mon.max_in_flight_one, "complete": ok,
                   "offered_rate": rate,
                   "produced_s": round(produced_s, 1)})
    out["ratio"] = None  # the offered rate sets the throughput here, not the worker
    env.stop_replicas()
    return out


class Profile:
    """perf record (software cpu-clock, call graphs) of one process for a while."""

    def __init__(self, outdir, name):
        self.outdir = outdir
        self.name = name
        self.proc = None

    def start(self, pid):
        if not shutil.which("perf"):
            return None
        self.data = self.outdir / ("perf-%s.data" % self.name)
        self.proc = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", "499",
                                      "--call-graph", "dwarf,16384", "-p", str(pid),
                                      "-o", str(self.data)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return self

    def stop(self):
        if not self.proc:
            return
        self.proc.send_signal(2)
        self.proc.wait(30)
        with open(self.outdir / ("profile-%s.txt" % self.name), "w") as f:
            subprocess.run(["perf", "report", "-i", str(self.data), "--no-children", "--stdio",
                            "--sort", "dso,sym", "-g", "none", "--percent-limit", "0.5"],
                           stdout=f, stderr=subprocess.DEVNULL, timeout=300)
            f.write("\n\n==== inclusive (children), by symbol ====\n")
            f.flush()
            subprocess.run(["perf", "report", "-i", str(self.data), "--children", "--stdio",
                            "--sort", "sym", "-g", "none", "--percent-limit", "2"],
                           stdout=f, stderr=subprocess.DEVNULL, timeout=600)
            f.write("\n\n==== by shared object ====\n")
            f.flush()
            subprocess.run(["perf", "report", "-i", str(self.data), "--no-children", "--stdio",
                            "--sort", "dso", "-g", "none"], stdout=f, stderr=subprocess.DEVNULL,
                           timeout=300)


# ---- scenarios -----------------------------------------------------------------------------

def real_limits(a):
    return {"latency_ms": a.latency_ms, "jitter_ms": a.jitter_ms, "qbo_rate_min": a.qbo_rate_min,
            "qbo_concurrent": a.qbo_concurrent, "hubspot_rate_10s": a.hubspot_rate_10s}


def rate_setting(a, per_partition=None):
    w = {"worker.threads": a.threads, "hubspot.rate_limit_per_10s": a.hubspot_rate_10s,
         "qbo.rate_limit_per_min": a.qbo_rate_min,
         "qbo.max_concurrent_per_realm": a.qbo_concurrent}
    s = {"replicas": a.replicas, "threads": a.threads, "worker": w}
    if per_partition:
        w["worker.max_in_flight_per_partition"] = per_partition
        s["per_partition"] = per_partition
        w.update(parse_sets(a.baseline_set))
    w.update(parse_sets(a.set))
    return s


def parse_sets(items):
    out = {}
    for it in items or []:
        k, eq, v = it.partition("=")
        if not eq or not k:
            raise SystemExit("bench: --set wants KEY=VALUE (a worker setting), not %r" % it)
        out[k] = v
    return out


def expected_seconds(env, setting, events):
    b = compute_bounds(env, setting, events, seen=env.seen)
    return len(events) / max(0.1, b["bound"])


def scenario_rate(a, logdir, name="rate", n=None, per_partition=None, time_limit=None,
                  warm=False, settle_s=0.0, profile=None):
    n = n or a.events
    with Env(a, name, n, real_limits(a), logdir) as env:
        if warm:
            warm_up(env, rate_setting(a), name, 0, settle_s)
        setting = rate_setting(a, per_partition)
        exp = expected_seconds(env, setting, env.workload.events)
        r = drain(env, setting, env.workload.events, name, timeout=time_limit or a.time_limit,
                  profile=profile, stall=time_limit or 45)
        r["expected_s"] = round(exp, 1)
        r["time_limit_s"] = time_limit or a.time_limit
        return r


def scenario_open(a, logdir, rate_bound):
    rate = a.open_rate or round(0.5 * rate_bound, 1)
    n = int(rate * a.open_seconds) + 1
    with Env(a, "open", max(n, 1000), real_limits(a), logdir) as env:
        setting = rate_setting(a)
        # Warm caches, then let the HubSpot windows (10 s) empty before offering load.
        warm_up(env, setting, "open", 10.0)
        return open_loop(env, setting, env.workload.events, rate, a.open_seconds, "open")


def warm_up(env, setting, label, wait_s, settle_s=0.0):
    """Drain the fewest events that touch every (tenant, contact) and (tenant, product), so
    the measured run starts with the caches warm; then wait wait_s, and longer if needed
    so that settle_s have passed since the warm-up began (a rate window it used has
    emptied). Returns those events."""
    t0 = time.monotonic()
    seen, warm = set(), []
    for ev in env.workload.events:
        keys = {("c", ev["tenant"].i, ev["first_contact"])} | {
            ("p", ev["tenant"].i, p) for p in ev["products"]}
        if keys - seen:
            seen |= keys
            warm.append(ev)
    print("  %s: warm-up with %d events" % (label, len(warm)), flush=True)
    drain(env, setting, warm, "warm", timeout=180)
    time.sleep(max(wait_s, settle_s - (time.monotonic() - t0)))
    return warm


LAT_IN_FLIGHT = 4096      # worker.max_in_flight per replica in the latency scenario
LAT_PER_PARTITION = 2048  # worker.max_in_flight_per_partition there


def scenario_latency(a, logdir, profile):
    """Warm the caches, sweep worker.threads (the plot), then the main latency-bound point."""
    lim = {"latency_ms": a.lat_latency_ms, "jitter_ms": 0, "qbo_rate_min": 0,
           "qbo_concurrent": 0, "hubspot_rate_10s": 0}
    pool = max(a.lat_events, 2000 if not a.quick else 300)
    with Env(a, "latency", pool, lim, logdir) as env:
        evs = env.workload.events

        def setting(threads):
            # In-flight bounds raised so that each replica holds more than 2,000 events at
            # once (the memory and CPU target's condition): 4,096 per replica, 2,048 per
            # partition; 6,000 events over 6 partitions put ~3,000 in each replica.
            w = {"worker.threads": threads, "hubspot.rate_limit_per_10s": 1000,
                 "hubspot.max_concurrent_per_portal": 100, "qbo.rate_limit_per_min": 10000,
                 "qbo.max_concurrent_per_realm": 50,
                 "worker.max_in_flight": max(LAT_IN_FLIGHT, 4 * threads),
                 "worker.max_in_flight_per_partition": LAT_PER_PARTITION}
            w.update(parse_sets(a.set))
            pp = int(w["worker.max_in_flight_per_partition"])
            return {"replicas": a.replicas, "threads": threads, "worker": w, "per_partition": pp}

        s = setting(a.lat_threads)
        warm = warm_up(env, s, "latency", 0)
        points = []
        threads = sorted(set(int(x) for x in a.sweep_threads.split(",") if x.strip()))
        threads = [t for t in threads if t < a.lat_threads]
        cursor = len(warm)
        for t in threads:
            st = setting(t)
            b = compute_bounds(env, st, evs[:500], seen=env.seen)
            m = int(max(150, min(a.lat_events, b["bound"] * a.sweep_seconds)))
            batch = [evs[(cursor + k) % len(evs)] for k in range(m)]
            cursor += m
            print("  latency: sweep %d threads x %d replicas, %d events" % (t, a.replicas, m),
                  flush=True)
            r = drain(env, st, batch, "s%d" % t, timeout=3 * m / max(1, b["bound"]) + 60)
            points.append(r)
        batch = [evs[(cursor + k) % len(evs)] for k in range(a.lat_events)]
        print("  latency: main point %d threads x %d replicas, %d events" % (
            a.lat_threads, a.replicas, len(batch)), flush=True)
        main = drain(env, s, batch, "lat", timeout=300, profile=profile)
        points.append(main)
        return main, points


def main(argv):
    a = parse_args(argv)
    bl.ALLOC_COUNT[0] = not a.no_alloc_count
    # SIGTERM (a CI timeout, kill) unwinds like Ctrl-C, so every stack and replica this run
    # started is stopped by its context manager instead of being left running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    out = pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    logdir = out / "logs"
    shutil.rmtree(logdir, ignore_errors=True)
    logdir.mkdir()
    kind = bl.kafka_kind()
    for b in ("hsqb-worker", "hsqb-sandbox", "ingress-load"):
        if not (bl.build_dir() / b).exists():
            raise SystemExit("bench: %s missing (run make)" % (bl.build_dir() / b))
    if bl.kafka_missing(kind):
        raise SystemExit("bench: %s missing (run make%s)" % (
            bl.kafka_missing(kind), "" if kind == "mock" else " kafka-dist"))
    scen = [s.strip() for s in a.scenarios.split(",") if s.strip()]
    t_start = time.monotonic()
    results = {"args": vars(a), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
               "kafka": bl.kafka_label(kind), "kafka_kind": kind,
               "loadavg_start": bl.loadavg(), "cpus": len(os_cpus()), "scenarios": {}}
    R = results["scenarios"]
    print("bench: on %s" % results["kafka"], flush=True)
    try:
        if "rate" in scen:
            print("bench: rate-limited drain, %d events over %d tenants ..." % (a.events, a.tenants),
                  flush=True)
            # Warm: the steady state is what the targets are about; the QBO window (60 s)
            # the warm-up's creates used must empty first, or QBO binds the first minute.
            R["rate"] = scenario_rate(a, logdir, warm=not a.cold, settle_s=61.0,
                                      profile=Profile(out, "rate") if a.profile else None)
            R["rate"]["cold"] = bool(a.cold)
            print(report.one_line("rate", R["rate"]), flush=True)
        if "baseline" in scen:
            print("bench: baseline (1 in flight per partition), %.0f s ..." % a.baseline_seconds,
                  flush=True)
            R["baseline"] = scenario_rate(a, logdir, "baseline", a.baseline_events, per_partition=1,
                                          time_limit=a.baseline_seconds, warm=True)
            print(report.one_line("baseline", R["baseline"]), flush=True)
        if "latency" in scen:
            print("bench: latency-bound (no rate limits, %d ms per call) ..." % a.lat_latency_ms,
                  flush=True)
            prof = Profile(out, "latency") if a.profile else None
            R["latency"], results["sweep"] = scenario_latency(a, logdir, prof)
            print(report.one_line("latency", R["latency"]), flush=True)
        if "open" in scen:
            rb = (R.get("rate") or {}).get("bound", {}).get("bound") or \
                a.tenants * a.hubspot_rate_10s / 10.0 / 3
            print("bench: open loop ...", flush=True)
            R["open"] = scenario_open(a, logdir, rb)
            print(report.one_line("open", R["open"]), flush=True)
        if "ingress" in scen:
            print("bench: ingress, %d signed requests over %d connections ..." % (
                a.ingress_requests, a.ingress_connections), flush=True)
            R["ingress"] = ingress_bench.run(a, logdir)
            print(ingress_bench.one_line(R["ingress"]), flush=True)
    finally:
        results["elapsed_s"] = round(time.monotonic() - t_start, 1)
        results["loadavg_end"] = bl.loadavg()
        (out / "bench.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    md = report.markdown(results)
    (out / "bench.md").write_text(md)
    png = report.plot(results, out)
    print()
    print(md)
    print("bench: %s, %s%s (%.0f s)" % (out / "bench.json", out / "bench.md",
                                         ", " + str(png) if png else "", results["elapsed_s"]))
    return 0


def os_cpus():
    return os.sched_getaffinity(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
