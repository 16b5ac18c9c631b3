"""Building blocks of the benchmark (tests/bench/bench.py): the dev stack, the generated
workload and its seeding, worker replicas, the result collector, process statistics and
the analysis of the sandbox's request log.

Independent of the worker on purpose: python3-kafka produces and reads, stdlib urllib
drives the sandbox's admin API, /proc gives CPU and memory. Run with /usr/bin/python3
(Debian's python3-kafka, python3-redis).
"""

import json
import logging
import math
import os
import pathlib
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from kafka import KafkaConsumer, KafkaProducer
from kafka.structs import TopicPartition

ROOT = pathlib.Path(__file__).resolve().parents[2]
STACK = ROOT / "tests" / "stack" / "stack"
SEED_DIR = ROOT / "tests" / "sandbox" / "seed"
TOPIC_ACTIONS = "hsqb.actions"
TOPIC_RESULTS = "hsqb.results"
TOPIC_DLQ = "hsqb.actions.dlq"
CLK_TCK = os.sysconf("SC_CLK_TCK")
# kafka-mock keeps ~5 MiB per partition (tests/kafka-mock/README.md); stay well below.
# Apache Kafka keeps its log on disk, but the same rule sizes its topics, so that both
# Kafkas run a scenario with the same partitions.
PARTITION_BUDGET_BYTES = 3 * 1024 * 1024

logging.getLogger("kafka").setLevel(logging.CRITICAL)


ALLOC_COUNT = [True]  # bench.py --no-alloc-count clears it


def alloc_count_so():
    """The allocation counter to preload into replicas, or None (disabled or not built)."""
    p = build_dir() / "alloc-count.so"
    return p if ALLOC_COUNT[0] and p.exists() else None


def build_dir():
    b = pathlib.Path(os.environ.get("BUILD", "build"))
    return b if b.is_absolute() else ROOT / b


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http_get(url, timeout=5):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError):
        return 0, ""


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def percentile(sorted_vals, p):
    """Nearest-rank percentile of an already sorted list (None when empty)."""
    if not sorted_vals:
        return None
    k = max(0, min(len(sorted_vals) - 1, int(math.ceil(p / 100.0 * len(sorted_vals))) - 1))
    return sorted_vals[k]


# ---- processes ---------------------------------------------------------------------------

def proc_stats(pid):
    """{'cpu_s': user+sys seconds, 'rss_mb', 'hwm_mb'} of a live process, or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open("/proc/%d/status" % pid) as f:
            status = f.read()
    except OSError:
        return None
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
    mem = {}
    for line in status.splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            mem[line.split(":")[0]] = int(line.split()[1]) / 1024.0
    return {"cpu_s": cpu, "rss_mb": mem.get("VmRSS", 0.0), "hwm_mb": mem.get("VmHWM", 0.0)}


def parse_metrics(text):
    """Prometheus text -> {(name, frozenset(labels)): value}."""
    samples = {}
    lab_re = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)", line)
        if not m:
            continue
        labels = frozenset(lab_re.findall(m.group(3) or ""))
        try:
            samples[(m.group(1), labels)] = float(m.group(4))
        except ValueError:
            pass
    return samples


def metric_sum(samples, name, **labels):
    total = 0.0
    for (n, labs), v in samples.items():
        if n == name and all(dict(labs).get(k) == val for k, val in labels.items()):
            total += v
    return total


# ---- the sandbox admin API ---------------------------------------------------------------

class Sandbox:
    def __init__(self, base, pid):
        self.base = base.rstrip("/")
        self.pid = pid

    def call(self, method, path, body=None, query=None, timeout=120):
        url = self.base + path + ("?" + urllib.parse.urlencode(query) if query else "")
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                raw, status = r.read(), r.status
        except urllib.error.HTTPError as e:
            raw, status = e.read(), e.code
        if status >= 300:
            raise RuntimeError("sandbox %s %s -> %d %s" % (method, path, status, raw[:300]))
        return json.loads(raw) if raw else None

    def config(self, doc):
        return self.call("POST", "/_sandbox/config", doc)

    def seed(self, doc):
        return self.call("POST", "/_sandbox/seed", doc)

    def requests(self, since=0, page=20000):
        """Every logged request after seq `since`, oldest first, and the number evicted."""
        out, evicted = [], 0
        while True:
            r = self.call("GET", "/_sandbox/requests", query={"since": since, "limit": page})
            out.extend(r["requests"])
            evicted = r.get("evicted", 0)
            if len(r["requests"]) < page:
                return out, evicted
            since = r["next_since"]


# ---- the dev stack -------------------------------------------------------------------------

def kafka_kind():
    """The Kafka of the stack: KAFKA=mock (default) or apache, as tests/stack/stack."""
    kind = os.environ.get("KAFKA") or "mock"
    if kind not in ("mock", "apache"):
        raise SystemExit("bench: KAFKA=%s: use mock or apache" % kind)
    return kind


def kafka_label(kind):
    """What the report calls that Kafka: "kafka-mock", or "Apache Kafka 3.9.0" with the
    version of the jars `make kafka-dist` fetched (tests/kafka/pom.xml)."""
    if kind == "mock":
        return "kafka-mock"
    for jar in sorted((build_dir() / "kafka" / "libs").glob("kafka_2.*-*.jar")):
        m = re.match(r"kafka_[\d.]+-(\d[\w.]*)\.jar$", jar.name)
        if m:
            return "Apache Kafka %s" % m.group(1)
    return "Apache Kafka"


def kafka_missing(kind):
    """The build product the stack needs for that Kafka, when it is missing; else None."""
    need = build_dir() / ("kafka-mock" if kind == "mock" else "kafka/libs/.complete")
    return None if need.exists() else need


class Stack:
    """tests/stack/stack up in a private temp dir (short path: it holds a UNIX socket), on
    the Kafka of kafka_kind(). The Kafka's processes: kafka-mock, or the broker JVMs
    (KRaft, broker+controller in one; KAFKA_BROKERS of them, default 1)."""

    def __init__(self, partitions, logdir, kafka=None):
        self.partitions = partitions
        self.logdir = pathlib.Path(logdir)
        self.kafka = kafka or kafka_kind()
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="hsqb-bench-"))
        self.env = {}
        self.up = False

    def start(self):
        # With KAFKA=apache the stack understands only --topic NAME:PARTITIONS, which is
        # all this passes.
        env = dict(os.environ, BUILD=str(build_dir()), KAFKA=self.kafka,
                   STACK_KAFKA_ARGS="--topic %s:%d --topic %s:%d" % (
                       TOPIC_ACTIONS, self.partitions, TOPIC_RESULTS, self.partitions))
        # A broker JVM needs seconds to start and waits up to 90 s for its quorum.
        r = subprocess.run([str(STACK), "up", str(self.dir)], env=env, capture_output=True,
                           text=True, timeout=90 if self.kafka == "mock" else 240,
                           start_new_session=True)
        if r.returncode != 0:
            raise RuntimeError("stack up failed:\n%s%s" % (r.stdout, r.stderr))
        self.up = True
        for line in (self.dir / "env").read_text().splitlines():
            k, _, v = line.partition("=")
            self.env[k] = v
        self.sandbox = Sandbox(self.env["SANDBOX_URL"], self.pid("sandbox"))
        return self

    def pid(self, name):
        return int((self.dir / ("%s.pid" % name)).read_text())

    def kafka_names(self):
        """The pid file names (without .pid) of the Kafka's processes."""
        if self.kafka == "mock":
            return ["kafka-mock"]
        return sorted(p.name[:-4] for p in self.dir.glob("kafka-*.pid")
                      if p.name[6:-4].isdigit())

    def proc_stats(self):
        """{'sandbox', 'redis', 'kafka': proc_stats} now; 'kafka' sums the CPU of every
        broker and takes the largest RSS. A process that is gone is left out."""
        out = {}
        for name in ("sandbox", "redis"):
            s = proc_stats(self.pid(name))
            if s:
                out[name] = s
        ks = [s for s in (proc_stats(self.pid(n)) for n in self.kafka_names()) if s]
        if ks:
            out["kafka"] = {"cpu_s": sum(s["cpu_s"] for s in ks),
                            "rss_mb": max(s["rss_mb"] for s in ks),
                            "hwm_mb": max(s["hwm_mb"] for s in ks)}
        return out

    def stop(self):
        if self.up:
            subprocess.run([str(STACK), "down", str(self.dir)], capture_output=True, timeout=60)
            self.up = False
        for p in [self.dir / "redis.log", self.dir / "sandbox.log"] + sorted(
                self.dir.glob("kafka-*.log")):
            if p.exists():
                shutil.copy(p, self.logdir / p.name)
        shutil.rmtree(self.dir, ignore_errors=True)


# ---- the workload ----------------------------------------------------------------------

FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "John", "Radia",
         "Ken", "Margaret", "Dennis", "Hedy", "Claude", "Katherine", "Niklaus"]
LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Backus",
        "Perlman", "Thompson", "Hamilton", "Ritchie", "Lamarr", "Shannon", "Johnson", "Wirth"]
ACTIONS = ("create_invoice", "create_estimate", "create_sales_receipt")


class Tenant:
    """One HubSpot portal paired with one QBO realm (the events' qbo_realm_id)."""

    def __init__(self, i):
        self.i = i
        self.portal = 810000000 + i
        self.realm = str(9300000000000000 + i)
        self.token = "pat-na1-bench%04d-1111-4111-8111-111111111111" % i
        self.refresh = "RT1-99-H0-1900000000bench%04drefreshtoken" % i
        self.contacts = []  # ids
        self.products = []  # (id, sku, name, price_cents, seeded_in_qbo)


class Workload:
    """Deterministic (--seed) tenants, objects and events; see bench.py --help for knobs."""

    def __init__(self, args, n_events, n_tenants, rng_seed):
        rnd = random.Random(rng_seed)
        self.tenants = [Tenant(i) for i in range(n_tenants)]
        self.objects = {t.i: {"contacts": [], "products": [], "line_items": [], "deals": [],
                              "quotes": []} for t in self.tenants}
        mix = parse_mix(args.mix)
        for t in self.tenants:
            objs = self.objects[t.i]
            for j in range(args.contacts):
                cid = 100001 + j
                fn, ln = FIRST[j % len(FIRST)], LAST[(j // len(FIRST)) % len(LAST)]
                objs["contacts"].append({"id": str(cid), "properties": {
                    "firstname": fn, "lastname": "%s %d" % (ln, j),
                    "email": "%s.%s%d@t%d.example" % (fn.lower(), ln.lower(), j, t.i)}})
                t.contacts.append(cid)
            for k in range(args.products):
                pid = 500001 + k
                price = rnd.randrange(500, 50000)
                sku, name = "SKU-%d-%03d" % (t.i, k), "Product %d-%03d" % (t.i, k)
                seeded = rnd.random() >= args.missing_products
                objs["products"].append({"id": str(pid), "properties": {
                    "name": name, "hs_sku": sku, "price": money(price)}})
                t.products.append((pid, sku, name, price, seeded))
        self.events = []  # dicts: tenant, action, otype, oid, first_contact, products
        next_li = {t.i: 1000001 for t in self.tenants}
        for n in range(n_events):
            t = self.tenants[n % n_tenants]
            objs = self.objects[t.i]
            otype = "QUOTE" if rnd.random() < args.quote_share else "DEAL"
            contacts = rnd.sample(t.contacts, rnd.randint(1, min(3, len(t.contacts))))
            nlines = rnd.randint(args.min_lines, args.max_lines)
            lis, used = [], []
            for _ in range(nlines):
                pid, sku, name, price, _seeded = rnd.choice(t.products)
                qty = rnd.randint(1, 12)
                li = next_li[t.i]
                next_li[t.i] += 1
                objs["line_items"].append({"id": str(li), "properties": {
                    "name": name, "hs_sku": sku, "hs_product_id": str(pid), "quantity": str(qty),
                    "price": money(price), "amount": money(price * qty)}})
                lis.append(str(li))
                used.append(pid)
            assoc = {"contacts": [str(c) for c in contacts], "line_items": lis}
            if otype == "DEAL":
                oid = 2000001 + len(objs["deals"])
                objs["deals"].append({"id": str(oid), "properties": {
                    "dealname": "Bench deal %d" % n, "pipeline": "default",
                    "dealstage": "closedwon"}, "associations": assoc})
            else:
                oid = 3000001 + len(objs["quotes"])
                objs["quotes"].append({"id": str(oid), "properties": {
                    "hs_title": "Bench quote %d" % n, "hs_status": "APPROVED",
                    "hs_currency": "USD"}, "associations": assoc})
            self.events.append({"tenant": t, "action": pick(rnd, mix), "otype": otype,
                                "oid": oid, "first_contact": min(contacts), "products": used})

    def minimum_calls(self, events, seen=None):
        """What the design needs at least for these events (design §4), given what earlier
        runs on the same stack already resolved (`seen`, from a previous answer): per event 3
        HubSpot reads (object with associations, line items batch, contact) and 1 QBO
        create; per realm CompanyInfo once and the Term once; per (realm, contact) first
        use a customer query + create; per (realm, product) first use a Sku query, plus a
        Name query and a create when the item is missing (and once per realm the income
        account for the items it creates)."""
        hs, qbo = 3 * len(events), len(events)
        seen_c, seen_p, realms, term = (set(x) for x in (seen or ((), (), (), ())))
        for ev in events:
            t = ev["tenant"]
            if t.i not in realms:
                realms.add(t.i)
                qbo += 1
            if ev["action"] == "create_invoice" and t.i not in term:
                term.add(t.i)
                qbo += 1
            if (t.i, ev["first_contact"]) not in seen_c:
                seen_c.add((t.i, ev["first_contact"]))
                qbo += 2
            for pid in ev["products"]:
                if (t.i, pid) not in seen_p:
                    seen_p.add((t.i, pid))
                    if t.products[pid - 500001][4]:
                        qbo += 1
                    else:  # Sku and Name queries, create; the income account once a realm
                        qbo += 3
                        if ("acct", t.i) not in seen_p:
                            seen_p.add(("acct", t.i))
                            qbo += 1
        return {"hubspot": hs, "qbo": qbo, "seen": (seen_c, seen_p, realms, term)}

    def seed(self, sandbox, base_realm):
        """One POST /_sandbox/seed per tenant: the portal (token, objects) and the realm
        (company, accounts, terms, the seeded items, the OAuth connection)."""
        client_id = json.loads((SEED_DIR / "qbo.json").read_text())[
            "intuit_oauth"]["clients"][0]["client_id"]
        for t in self.tenants:
            objs = self.objects[t.i]
            realm = {k: base_realm[k] for k in ("utc_offset", "CompanyInfo", "Preferences",
                                                "Account", "Term") if k in base_realm}
            realm["realm_id"] = t.realm
            realm["CompanyInfo"] = dict(realm["CompanyInfo"],
                                        CompanyName="Bench company %d" % t.i)
            realm["Item"] = [{"Name": name, "Sku": sku, "Type": "Service",
                              "UnitPrice": price / 100.0, "IncomeAccountRef": {"value": "79"}}
                             for (_pid, sku, name, price, seeded) in t.products if seeded]
            doc = {"hubspot": {"portals": [{"portalId": t.portal, "tokens": [t.token],
                                            "objects": {k: v for k, v in objs.items() if v}}]},
                   "qbo": {"realms": [realm]},
                   "intuit_oauth": {"connections": [{"realm_id": t.realm, "client_id": client_id,
                                                     "refresh_token": t.refresh}]}}
            sandbox.seed(doc)


def money(cents):
    return "%d.%02d" % (cents // 100, cents % 100)


def parse_mix(spec):
    out = []
    for part in spec.split(","):
        name, _, w = part.partition("=")
        name = name.strip()
        if not name.startswith("create_"):
            name = "create_" + name
        if name not in ACTIONS:
            raise SystemExit("--mix: unknown action %r (one of %s)" % (name, ", ".join(ACTIONS)))
        out.append((name, float(w or 1)))
    return out


def pick(rnd, mix):
    x = rnd.random() * sum(w for _, w in mix)
    for name, w in mix:
        x -= w
        if x < 0:
            return name
    return mix[-1][0]


def base_realm():
    return json.loads((SEED_DIR / "qbo.json").read_text())["qbo"]["realms"][0]


def event_message(ev, seq, run_tag):
    """(event id, key bytes, value bytes) of one generated event, per the input schema."""
    t = ev["tenant"]
    eid = "ap-%d-%s%08d-7-0" % (t.portal, run_tag, seq)
    fields = {"qbo_realm_id": t.realm, "customer_source": "first_associated_contact",
              "create_missing_products": "true"}
    if ev["action"] == "create_invoice":
        fields["payment_terms"] = "Net 30"
    doc = {"specversion": "1.0", "id": eid, "type": "hsqb.action." + ev["action"],
           "source": "hubspot://portal/%d/workflow/4242" % t.portal,
           "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "datacontenttype": "application/json",
           "data": {"callbackId": eid,
                    "origin": {"portalId": t.portal, "actionDefinitionId": 10646377,
                               "actionDefinitionVersion": 1},
                    "context": {"source": "WORKFLOWS", "workflowId": 4242},
                    "object": {"objectId": ev["oid"], "objectType": ev["otype"]},
                    "inputFields": fields}}
    key = "%d:%s:%d" % (t.portal, ev["otype"], ev["oid"])
    return eid, key.encode(), json.dumps(doc, separators=(",", ":")).encode()


def partitions_for(n_events, min_partitions, bytes_per_event=900):
    return max(min_partitions, int(math.ceil(n_events * bytes_per_event / PARTITION_BUDGET_BYTES)))


# ---- producing and collecting ------------------------------------------------------------

class Producer:
    def __init__(self, bootstrap):
        self.p = KafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=5,
                               batch_size=256 * 1024, max_request_size=8 * 1024 * 1024)
        self.sent = {}  # event id -> input timestamp ms

    def send(self, eid, key, value):
        ts = int(time.time() * 1000)
        self.sent[eid] = ts
        self.p.send(TOPIC_ACTIONS, key=key, value=value,
                    headers=[("content-type", b"application/cloudevents+json")], timestamp_ms=ts)

    def flush(self):
        self.p.flush(timeout=120)

    def close(self):
        self.p.close(timeout=10)


class Collector(threading.Thread):
    """Reads hsqb.results and the DLQ from the beginning (no group): per input id, the
    result's Kafka timestamp, status, worker-side duration and error code.

    During a measured run it is held (hold()): the replicas, not the instrument, get the
    CPU. Progress is then read from the topics' end offsets (produced(), one request) and
    the records are read once the run is over (catch_up()). A result's Kafka timestamp is
    set by the worker's producer when it sends it, so reading later changes no number."""

    def __init__(self, bootstrap):
        super().__init__(daemon=True, name="bench-collector")
        self.bootstrap = bootstrap
        self.results = {}  # input id -> (ts_ms, status, duration_ms, code)
        self.duplicates = 0
        self.dlq = 0
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.halt = threading.Event()
        self.held = threading.Event()
        self.pos = {}  # TopicPartition -> next offset read
        self.error = None
        self.tps = []
        self.probe = None

    def run(self):
        try:
            c = KafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None,
                              enable_auto_commit=False, fetch_max_wait_ms=50,
                              max_poll_records=5000, max_partition_fetch_bytes=4 * 1024 * 1024)
            tps = [TopicPartition(TOPIC_RESULTS, p) for p in c.partitions_for_topic(TOPIC_RESULTS)]
            tps += [TopicPartition(TOPIC_DLQ, p) for p in c.partitions_for_topic(TOPIC_DLQ)]
            self.tps = tps
            self.probe = KafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None,
                                       enable_auto_commit=False)
            c.assign(tps)
            c.seek_to_beginning()
            self.ready.set()
            while not self.halt.is_set():
                if self.held.is_set():
                    self.halt.wait(0.05)
                    continue
                for tp, recs in c.poll(timeout_ms=100).items():
                    for rec in recs:
                        self._add(rec)
                    with self.lock:
                        self.pos[tp] = recs[-1].offset + 1
            c.close()
            self.probe.close()
        except Exception as e:  # noqa: BLE001 - reported by the caller
            self.error = e
            self.ready.set()

    def hold(self):
        self.held.set()

    def ends(self):
        """{TopicPartition: end offset} of the results and DLQ topics now (one request)."""
        return self.probe.end_offsets(self.tps)

    def catch_up(self, ends, timeout=60):
        """Reads on (released from hold) until every partition is read up to ends."""
        self.held.clear()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.error:
            with self.lock:
                if all(self.pos.get(tp, 0) >= end for tp, end in ends.items()):
                    return True
            time.sleep(0.05)
        return False

    def _add(self, rec):
        if rec.topic == TOPIC_DLQ:
            self.dlq += 1
            return
        try:
            d = json.loads(rec.value)["data"]
        except (ValueError, KeyError, TypeError):
            return
        iid = d.get("input_id")
        code = (d.get("error") or {}).get("code")
        with self.lock:
            if iid in self.results:
                self.duplicates += 1
                return
            self.results[iid] = (rec.timestamp, d.get("status"), d.get("duration_ms"), code)

    def count(self, ids=None):
        with self.lock:
            if ids is None:
                return len(self.results)
            return sum(1 for i in ids if i in self.results)

    def snapshot(self):
        with self.lock:
            return dict(self.results)

    def stop(self):
        self.halt.set()
        self.join(timeout=10)


INPUT_TOPICS = (TOPIC_ACTIONS, "hsqb.actions.retry")


def log_end(bootstrap):
    """{TopicPartition: end offset} of the worker's input topics."""
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        tps = [TopicPartition(t, p) for t in INPUT_TOPICS
               for p in (c.partitions_for_topic(t) or ())]
        return c.end_offsets(tps)
    finally:
        c.close()


def commit_log_end(bootstrap, group, ends):
    """Commit `ends` as the group's positions (a group with no members yet)."""
    from kafka.structs import OffsetAndMetadata
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        c.commit({tp: OffsetAndMetadata(off, "") for tp, off in ends.items()})
    finally:
        c.close()


# ---- worker replicas -----------------------------------------------------------------------

class Replica:
    def __init__(self, name, env, logdir):
        self.name = name
        self.port = free_port()
        self.env = dict(env, HSQB_METRICS_LISTEN="127.0.0.1:%d" % self.port)
        self.logdir = pathlib.Path(logdir)
        self.proc = None
        self.final = None  # proc stats at the end

    def start(self):
        out = open(self.logdir / ("%s.log" % self.name), "ab")
        err = open(self.logdir / ("%s.stderr" % self.name), "ab")
        env = self.env
        if alloc_count_so():
            # The allocation counter (tests/bench/alloc_count.c): alloc-PID.cnt in logdir.
            env = dict(env, LD_PRELOAD=str(alloc_count_so()), ALLOC_COUNT_DIR=str(self.logdir))
            if os.environ.get("ALLOC_COUNT_STACKS"):  # call stacks too: alloc_stacks.py
                env["ALLOC_COUNT_STACKS"] = os.environ["ALLOC_COUNT_STACKS"]
        try:
            self.proc = subprocess.Popen([str(build_dir() / "hsqb-worker"), "run"], env=env,
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                         start_new_session=True, cwd=str(ROOT))
        finally:
            out.close()
            err.close()
        return self

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def wait_up(self, timeout=30):
        """Until /healthz answers (the consumer may still be joining the group)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError("%s exited with %s; see %s/%s.stderr" % (
                    self.name, self.proc.poll(), self.logdir, self.name))
            if http_get(self.url("/healthz"), 1)[0] == 200:
                return
            time.sleep(0.1)
        raise RuntimeError("%s: /healthz not 200 within %ds" % (self.name, timeout))

    def allocs(self):
        """Allocation calls so far (malloc + calloc + realloc, aligned ones as malloc), or
        None when the counter is not preloaded. Lags by < 64 per thread (batched)."""
        try:
            raw = (self.logdir / ("alloc-%d.cnt" % self.pid)).read_bytes()
        except OSError:
            return None
        if len(raw) < 24:
            return None
        return sum(int.from_bytes(raw[8 * k:8 * k + 8], "little") for k in range(3))

    def ctx_switches(self):
        """Voluntary context switches (a thread blocked: a wake-up) of every live thread so
        far, or None when the process is gone. Involuntary ones (preemption) are left out:
        they count the machine's other load, not the worker's waits. A thread's count is
        lost when it exits; the worker's threads live as long as the process."""
        total = 0
        try:
            tasks = os.listdir("/proc/%d/task" % self.pid)
        except OSError:
            return None
        for tid in tasks:
            try:
                with open("/proc/%d/task/%s/status" % (self.pid, tid)) as f:
                    for line in f:
                        if line.startswith("voluntary_ctxt_switches"):
                            total += int(line.split()[1])
            except OSError:
                continue
        return total

    def metrics(self):
        st, body = http_get(self.url("/metrics"), 5)
        return parse_metrics(body) if st == 200 else {}

    def stop(self, timeout=40):
        if not self.alive():
            return self.proc.poll() if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def worker_cli(env, args, stdin):
    r = subprocess.run([str(build_dir() / "hsqb-worker")] + args, env=env, input=stdin,
                       capture_output=True, text=True, timeout=60, cwd=str(ROOT))
    if r.returncode != 0:
        raise RuntimeError("hsqb-worker %s exited %d: %s" % (
            " ".join(args[:2]), r.returncode, (r.stderr or r.stdout).strip()[:300]))


def store_credentials(env, tenants):
    """Each tenant's tokens; its realm bound to its portal (the worker refuses events of
    a realm not bound to their portal)."""
    for t in tenants:
        worker_cli(env, ["credentials", "qbo", "--realm", t.realm, "--portal", str(t.portal),
                         "--refresh-token", "-"], t.refresh + "\n")
        worker_cli(env, ["credentials", "hubspot", "--portal", str(t.portal), "--token", "-"],
                   t.token + "\n")


def redis_commandstats(stack_env):
    """{command: calls} from INFO commandstats of the stack's redis-server."""
    import redis as redislib
    r = redislib.Redis(host="127.0.0.1", port=int(stack_env["REDIS_PORT"]), socket_timeout=10)
    try:
        info = r.info("commandstats")
    finally:
        r.close()
    return {k.replace("cmdstat_", ""): v.get("calls", 0) for k, v in info.items()}


# ---- the request log ---------------------------------------------------------------------

_NUM = re.compile(r"/\d+")
_FROM = re.compile(r"\bfrom\s+(\w+)", re.I)


def endpoint_of(entry):
    """A route template for a logged request: ids become {id}, QBO queries name their
    entity (query Customer, query Item...)."""
    vendor = entry.get("vendor") or "none"
    path = entry.get("path") or ""
    if vendor == "qbo":
        rest = path.split("/v3/company/", 1)[-1].split("/", 1)
        tail = rest[1] if len(rest) > 1 else ""
        if tail.startswith("query"):
            m = _FROM.search(entry.get("query") or "") or _FROM.search(entry.get("body") or "")
            return "qbo query %s" % (m.group(1) if m else "?")
        return "qbo %s %s" % (entry.get("method"), _NUM.sub("/{id}", tail))
    return "%s %s %s" % (vendor, entry.get("method"), _NUM.sub("/{id}", path))


def analyse_log(entries, t_from_ms=None, t_to_ms=None):
    """Counts by vendor and by endpoint, 429s and mean duration, over [t_from, t_to)."""
    by_vendor, by_endpoint, dur = {}, {}, {}
    n429 = {}
    for e in entries:
        tm = e.get("time_ms")
        if t_from_ms is not None and tm is not None and tm < t_from_ms:
            continue
        if t_to_ms is not None and tm is not None and tm >= t_to_ms:
            continue
        v = e.get("vendor") or "none"
        by_vendor[v] = by_vendor.get(v, 0) + 1
        ep = endpoint_of(e)
        by_endpoint[ep] = by_endpoint.get(ep, 0) + 1
        if e.get("status") == 429:
            n429[v] = n429.get(v, 0) + 1
        d = e.get("duration_ms")
        if d is not None:
            s = dur.setdefault(v, [0.0, 0])
            s[0] += d
            s[1] += 1
    return {"by_vendor": by_vendor, "by_endpoint": by_endpoint, "429": n429,
            "mean_ms": {v: s[0] / s[1] for v, s in dur.items() if s[1]}}
