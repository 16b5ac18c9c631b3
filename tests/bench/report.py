"""Rendering of the benchmark's results: one progress line per scenario, the markdown
table (tests/bench/out/bench.md) and the gnuplot PNG of the worker-slots sweep."""

import shutil
import subprocess


def _f(x, nd=1):
    if x is None:
        return "-"
    if isinstance(x, float):
        return ("%%.%df" % nd) % x
    return str(x)


def _top_commands(by, most=8):
    """The commands that cost most per event, "set 4.0, zadd 1.8, ...": the issue-20 budget
    is read from this (INFO commandstats, so a script's inner commands count too)."""
    top = sorted(by.items(), key=lambda kv: -kv[1])[:most]
    rest = sum(v for _, v in sorted(by.items(), key=lambda kv: -kv[1])[most:])
    out = ", ".join("%s %s" % (k, _f(v, 2)) for k, v in top)
    return out + (", other %s" % _f(rest, 2) if rest else "")


def one_line(name, r):
    if not r.get("completed"):
        return "  %s: no results" % name
    b = r["bound"]
    ratio = r["ratio"] if r["ratio"] is not None else float("nan")
    return ("  %s: %d/%d events, %.1f ev/s steady (%.1f whole run) vs bound %.1f (%s) = %.2f; "
            "p50/p99 e2e %s/%s ms; calls/ev %s; 429s %s; worker %.3f ms CPU/ev, %s allocs/ev, "
            "%s wake-ups/ev, %.0f MB peak; load %s" % (
                name, r["completed"], r["events"], r["throughput"], r["throughput_whole"],
                         b["bound"], b["binding"], ratio, r["latency_ms"]["p50"],
                         r["latency_ms"]["p99"], r["calls_per_event"], sum(r["429"].values()),
                         r["worker_cpu_ms_per_event"], _f(r.get("worker_allocs_per_event")),
                         _f(r.get("worker_ctxsw_per_event")), r["worker_hwm_mb"], r["loadavg"]))


ROWS = [
    ("events completed / produced", lambda r: "%d / %d" % (r["completed"], r["events"])),
    ("tenants (portal + realm pairs)", lambda r: r["tenants"]),
    ("replicas x worker.threads (slots)",
     lambda r: "%d x %d (%d)" % (r["replicas"], r["threads"], r["bound"]["slots"])),
    ("max in flight per partition / partitions",
     lambda r: "%s / %s" % (r["max_in_flight_per_partition"], r["partitions"])),
    ("**throughput, events/s** (steady)", lambda r: "**%s**" % _f(r["throughput"])),
    ("throughput, first to last result", lambda r: _f(r["throughput_whole"])),
    ("ideal bound, events/s (binding limit)",
     lambda r: "%s (%s)" % (_f(r["bound"]["bound"]), r["bound"]["binding"])),
    ("  concurrency / QBO / HubSpot bound",
     lambda r: "%s / %s / %s" % (_f(r["bound"]["concurrency"]), _f(r["bound"]["qbo"]),
                                 _f(r["bound"]["hubspot"]))),
    ("**measured / bound**", lambda r: "**%s**" % _f(r["ratio"], 2)),
    ("CPU of all processes, ms / event -> machine cap, events/s",
     lambda r: "%s -> %s" % (_f(r.get("all_cpu_ms_per_event"), 2), _f(r.get("cpu_bound")))),
    ("latency input -> result p50 / p95 / p99, ms",
     lambda r: "%s / %s / %s" % (r["latency_ms"]["p50"], r["latency_ms"]["p95"],
                                 r["latency_ms"]["p99"])),
    ("in-worker duration p50 / p99, ms",
     lambda r: "%s / %s" % (r["service_ms"]["p50"], r["service_ms"]["p99"])),
    ("HubSpot calls / event (steady; minimum)",
     lambda r: "%s (%s; %s)" % (_f(r["calls_per_event"].get("hubspot"), 2),
                               _f(r["calls_per_event_steady"].get("hubspot"), 2),
                               _f(r["minimum_per_event_steady"]["hubspot"], 2))),
    ("QBO calls / event (steady; minimum)",
     lambda r: "%s (%s; %s)" % (_f(r["calls_per_event"].get("qbo"), 2),
                               _f(r["calls_per_event_steady"].get("qbo"), 2),
                               _f(r["minimum_per_event_steady"]["qbo"], 2))),
    ("OAuth calls / event", lambda r: _f(r["calls_per_event"].get("oauth", 0.0), 3)),
    ("429s received (share of API calls)",
     lambda r: "%d (%.3f%%)" % (sum(r["429"].values()), 100 * r["429_share"])),
    ("worker limiter waits, thread-s (HubSpot / QBO)",
     lambda r: "%s / %s" % (_f(r["worker_metrics"]["ratelimit_wait_s"].get("hubspot")),
                            _f(r["worker_metrics"]["ratelimit_wait_s"].get("qbo")))),
    ("Redis commands / event, inner ones included (top commands)",
     lambda r: "%s (%s)" % (_f(r.get("redis_commands_per_event"), 1),
                            _top_commands(r.get("redis_by_command_per_event") or {}))),
    ("worker CPU, ms / event (both replicas)", lambda r: _f(r["worker_cpu_ms_per_event"], 3)),
    ("worker allocations / event (malloc + calloc + realloc, both replicas)",
     lambda r: _f(r.get("worker_allocs_per_event"))),
    ("worker wake-ups / event (voluntary context switches, both replicas)",
     lambda r: _f(r.get("worker_ctxsw_per_event"))),
    ("worker peak RSS, MB (max in flight: fullest replica / both)",
     lambda r: "%s (%s / %s)" % (_f(r["worker_hwm_mb"]), r.get("max_in_flight_replica", "-"),
                                 r.get("max_in_flight"))),
    ("sandbox CPU ms / event, peak RSS MB",
     lambda r: "%s, %s" % (_f(r.get("sandbox_cpu_ms_per_event"), 3), _f(r.get("sandbox_hwm_mb")))),
    # {kafka}: the results' "kafka" (kafka-mock or Apache Kafka 3.9.0); kafka_mock_cpu_s
    # is what results from before KAFKA=apache called it.
    ("redis / kafka CPU s; kafka peak RSS MB ({kafka})",
     lambda r: "%s / %s; %s" % (_f(r.get("redis_cpu_s"), 2),
                                _f(r.get("kafka_cpu_s", r.get("kafka_mock_cpu_s")), 2),
                                _f(r.get("kafka_hwm_mb", r.get("kafka_mock_hwm_mb"))))),
    ("load average (1/5/15 min) at the end", lambda r: " ".join("%.2f" % x for x in r["loadavg"])),
]

ORDER = ("rate", "baseline", "latency", "open")
TITLES = {"rate": "rate-limited drain", "baseline": "baseline: 1 in flight / partition",
          "latency": "latency-bound drain", "open": "open loop"}


def markdown(results):
    sc = results["scenarios"]
    names = [n for n in ORDER if n in sc and sc[n].get("completed")]
    if not names:
        return "No scenario completed.\n"
    a = results["args"]
    kafka = results.get("kafka", "kafka-mock")
    lines = ["| | " + " | ".join(TITLES[n] for n in names) + " |",
             "|---|" + "---|" * len(names)]
    for label, fn in ROWS:
        cells = []
        for n in names:
            try:
                cells.append(str(fn(sc[n])))
            except (KeyError, TypeError):
                cells.append("-")
        lines.append("| %s | %s |" % (label.replace("{kafka}", kafka), " | ".join(cells)))
    notes = []
    if "open" in names:
        notes.append("Open loop offered %.1f events/s for %.0f s." % (
            sc["open"]["offered_rate"], a["open_seconds"]))
    if "rate" in names and "baseline" in names and sc["baseline"]["throughput"]:
        notes.append("**default / baseline = %.2f** (steady throughput, same limits)." % (
            sc["rate"]["throughput"] / sc["baseline"]["throughput"]))
    for n in names:
        if not sc[n].get("complete", True):
            notes.append("%s stopped after %.0f s (time limit) with %d of %d results." % (
                n, sc[n].get("time_limit_s") or 0, sc[n]["completed"], sc[n]["events"]))
    notes.append("Kafka: %s%s. Latency %d ms + 0..%d ms per call under limits; %d ms in the "
                 "latency-bound run. %d CPUs; load average %s at the start. %.0f s in all." % (
                     kafka, " (KRaft, broker+controller in one JVM)"
                     if results.get("kafka_kind") == "apache" else "",
                     a["latency_ms"], a["jitter_ms"], a["lat_latency_ms"], results["cpus"],
                     " ".join("%.2f" % x for x in results["loadavg_start"]),
                     results.get("elapsed_s", 0)))
    return "\n".join(lines) + "\n\n" + "\n".join("- " + x for x in notes) + "\n"


def plot(results, out):
    """PNG of throughput (and its bound) and p99 in-worker duration against worker slots."""
    pts = results.get("sweep") or []
    pts = [p for p in pts if p.get("completed")]
    if not pts or not shutil.which("gnuplot"):
        return None
    dat = out / "sweep.dat"
    with open(dat, "w") as f:
        f.write("# slots throughput bound p99_service_ms p99_e2e_ms machine_cpu_cap\n")
        for p in sorted(pts, key=lambda p: p["bound"]["slots"]):
            f.write("%d %.2f %.2f %s %s %s\n" % (p["bound"]["slots"], p["throughput"],
                                                 p["bound"]["bound"], p["service_ms"]["p99"],
                                                 p["latency_ms"]["p99"], p.get("cpu_bound") or 0))
    png = out / "bench.png"
    a = results["args"]
    script = """
set terminal pngcairo size 900,520 noenhanced font ",10"
set output '{png}'
set title 'hsqb-worker, latency-bound ({lat} ms per API call, no rate limits), {r} replicas, {t} tenants, {k}'
set xlabel 'worker slots (replicas x worker.threads)'
set ylabel 'events/s'
set y2label 'p99 in-worker duration, ms'
set ytics nomirror
set y2tics
set logscale x 2
set key top left
set grid
plot '{dat}' using 1:3 with lines dt 2 lw 2 title 'ideal bound', \\
     '{dat}' using 1:6 with lines dt 3 lw 2 title 'machine CPU cap (all processes)', \\
     '{dat}' using 1:2 with linespoints lw 2 pt 7 title 'measured throughput', \\
     '{dat}' using 1:4 axes x1y2 with linespoints lw 1 pt 5 title 'p99 duration (right)'
""".format(png=png, dat=dat, lat=a["lat_latency_ms"], r=a["replicas"], t=a["tenants"],
           k=results.get("kafka", "kafka-mock"))
    try:
        subprocess.run(["gnuplot"], input=script, text=True, check=True, timeout=60,
                       capture_output=True)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError):
        try:
            subprocess.run(["gnuplot"], input=script.replace("pngcairo", "png"), text=True,
                           check=True, timeout=60, capture_output=True)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError):
            return None
    return png
