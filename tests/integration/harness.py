"""End-to-end harness for hsqb-worker: the dev stack, worker replicas, and independent clients.

Everything here checks the worker from the outside, with code that shares nothing with it:
python3-kafka produces inputs and reads results and dead letters, python3-redis reads the
dedup markers, stdlib urllib drives the sandbox's admin API (what exists in "QuickBooks",
which requests reached it), jsonschema validates every result. Used by the pytest suite
(tests/integration) and by the demo (tests/demo/demo.py); it has no pytest dependency.

    h = Harness(logdir)          # nothing started yet
    h.start(replicas=2)          # stack up, credentials stored, 2 workers ready
    ev = h.event("create_invoice", "DEAL", 1005, realm=US1)
    h.produce(ev)
    res = h.wait_results([ev.id])[ev.id][0]
    h.stop()                     # workers SIGTERM, stack down; also safe after a failure

Run with Debian's /usr/bin/python3 (python3-kafka, python3-redis, python3-jsonschema).
"""

import base64
import contextlib
import datetime
import hashlib
import hmac
import json
import logging
import os
import pathlib
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
import uuid
from decimal import ROUND_HALF_UP, Decimal

import jsonschema
import redis as redislib
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from kafka import KafkaConsumer, KafkaProducer
from kafka.structs import TopicPartition

ROOT = pathlib.Path(__file__).resolve().parents[2]
SEED_DIR = ROOT / "tests" / "sandbox" / "seed"
SCHEMA_DIR = ROOT / "schemas"
STACK = ROOT / "tests" / "stack" / "stack"
KAFKA_ADMIN = ROOT / "tests" / "stack" / "kafka_admin.py"
STACK_LOGS = ("redis.log", "kafka-mock.log", "sandbox.log")

TOPIC_ACTIONS = "hsqb.actions"
TOPIC_RESULTS = "hsqb.results"
TOPIC_DLQ = "hsqb.actions.dlq"
GROUP = "hsqb-e2e"
KEY_PREFIX = "hsqb:"  # redis.key_prefix default

logging.getLogger("kafka").setLevel(logging.CRITICAL)


def build_dir():
    b = pathlib.Path(os.environ.get("BUILD", "build"))
    return b if b.is_absolute() else ROOT / b


def worker_binary():
    return build_dir() / "hsqb-worker"


# ---- seeded facts (read from the seed files so they cannot drift) --------------------

def _load(name):
    with open(SEED_DIR / name, encoding="utf-8") as f:
        return json.load(f)


_HS = _load("hubspot.json")["hubspot"]
_QBO = _load("qbo.json")
PORTAL1 = 102670506
PORTAL2 = 243987001
US1 = "4620816365014867780"
US2 = "4620816365014867781"
CA1 = "9130357766554433"
AST1 = "4620816365014867790"  # US, Automated Sales Tax on (issue 15), company in CA
MC1 = "4620816365014867791"  # US, multicurrency (home USD; EUR and GBP), AST on
QBO_REALMS = (US1, US2, CA1, AST1, MC1)  # every realm connected in the seed
# The portal each seeded realm is bound to (`credentials qbo --portal`; the worker refuses
# an event whose realm is not bound to its portal). Every seeded company is portal 1's:
# the tests that book one company from both portals (test_faults' streams, the SIGKILL
# test) leave US1 and US2 unbound for their duration and run their replicas with
# UPGRADE_ENV, the upgrade path of README "Tenants" (Harness.cross_portal).
REALM_PORTAL = {US1: PORTAL1, US2: PORTAL1, CA1: PORTAL1, AST1: PORTAL1, MC1: PORTAL1}
UPGRADE_ENV = {"HSQB_TENANCY_ALLOW_UNBOUND": "true"}
TENANCY_EPOCH_S = 1.0  # worker/tenancy.h TENANCY_EPOCH_POLL_MS: a bind or unbind reaches
                       # every replica's cached bindings within this


def _full_token(portal):
    for p in _HS["portals"]:
        if p["portalId"] == portal:
            for t in p["tokens"]:
                if isinstance(t, dict) and not t.get("scopes") and not t.get("expiresAt"):
                    return t["token"]
    raise KeyError(portal)


HUBSPOT_TOKENS = {PORTAL1: _full_token(PORTAL1), PORTAL2: _full_token(PORTAL2)}
QBO_REFRESH_TOKENS = {c["realm_id"]: c["refresh_token"]
                      for c in _QBO["intuit_oauth"]["connections"]}
# The seeded static access tokens: what a test reads QBO with, as the worker would.
QBO_ACCESS_TOKENS = {c["realm_id"]: c["access_token"]
                     for c in _QBO["intuit_oauth"]["connections"] if c.get("access_token")}


def seeded_secrets():
    """Every secret value in the seeds: tokens, refresh tokens, client secrets."""
    out = set()
    for p in _HS["portals"]:
        for t in p.get("tokens", []):
            out.add(t if isinstance(t, str) else t["token"])
        for app in p.get("oauth_apps", []):
            out.update([app["client_secret"], app["refresh_token"]])
    io = _QBO["intuit_oauth"]
    for c in io["clients"]:
        out.add(c["client_secret"])
    for c in io["connections"]:
        out.update(v for k, v in c.items() if k in ("refresh_token", "access_token", "auth_code"))
    return out


# ---- small utilities -------------------------------------------------------------------

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def cents(x):
    """A decimal string or a JSON number (QBO amounts) -> int cents, exactly."""
    d = Decimal(x) if isinstance(x, str) else Decimal(repr(x))
    return int((d * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def rfc3339_now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def wait_until(pred, timeout, interval=0.1, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def http_get(url, timeout=5):
    """(status, body text); status 0 when the connection failed."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError):
        return 0, ""


# ---- the sandbox admin API ---------------------------------------------------------------

class Sandbox:
    """Client of hsqb-sandbox's /_sandbox/ admin API (tests/sandbox/README.md)."""

    def __init__(self, base):
        self.base = base.rstrip("/")

    def _call(self, method, path, body=None, query=None):
        url = self.base + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                raw = r.read()
                status = r.status
        except urllib.error.HTTPError as e:
            raw, status = e.read(), e.code
        if status >= 300:
            raise RuntimeError("sandbox %s %s -> %d %s" % (method, path, status, raw[:500]))
        return json.loads(raw) if raw else None

    def reset(self):
        self._call("POST", "/_sandbox/reset")

    def seed(self, doc):
        self._call("POST", "/_sandbox/seed", doc)

    def config(self, doc):
        return self._call("POST", "/_sandbox/config", doc)

    def add_fault(self, **rule):
        return self._call("POST", "/_sandbox/faults", rule)

    def faults(self):
        return self._call("GET", "/_sandbox/faults")["faults"]

    def fault(self, fid):
        for f in self.faults():
            if f["id"] == fid:
                return f
        raise KeyError(fid)

    def clear_faults(self):
        self._call("DELETE", "/_sandbox/faults")

    def mark(self):
        """The sequence number of the last logged request (use as since=)."""
        return self._call("GET", "/_sandbox/requests", query={"since": 2**62, "limit": 1})[
            "total_recorded"]

    def evicted(self):
        """How many entries the request log's ring has dropped since the reset."""
        return self._call("GET", "/_sandbox/requests", query={"since": 2**62, "limit": 1})[
            "evicted"]

    def requests(self, since=0, **filters):
        """Every logged request after seq `since` matching the filters (vendor, tenant,
        method, path prefix, status), oldest first."""
        out = []
        while True:
            q = dict(filters, since=since, limit=1000)
            page = self._call("GET", "/_sandbox/requests", query=q)
            out.extend(page["requests"])
            if len(page["requests"]) < 1000:
                return out
            since = page["next_since"]

    def state(self, realm=None, portal=None):
        q = {}
        if realm:
            q["realm"] = realm
        if portal:
            q["portal"] = str(portal)
        return self._call("GET", "/_sandbox/state", query=q)

    def qbo(self, realm):
        """{kind: [entities]} of one QBO company, plus 'stats'."""
        return self.state(realm=realm)["qbo"][realm]

    def oauth(self):
        return self.state(realm=US1)["oauth"]

    # Reading QuickBooks as a client does: the Accounting API's query endpoint, with the
    # realm's bearer token (the seeded static access token).
    def qbo_query(self, realm, statement):
        """The QueryResponse of one `GET /v3/company/{realm}/query` ({} when no rows)."""
        url = "%s/v3/company/%s/query?%s" % (self.base, realm, urllib.parse.urlencode(
            {"query": statement, "minorversion": "75"}, quote_via=urllib.parse.quote))
        req = urllib.request.Request(url, headers={
            "Authorization": "Bearer " + QBO_ACCESS_TOKENS[realm],
            "Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return json.loads(r.read())["QueryResponse"]
        except urllib.error.HTTPError as e:
            raise RuntimeError("QBO query %r on %s -> %d %s" % (
                statement, realm, e.code, e.read()[:500])) from None

    def qbo_select(self, realm, entity, where=None, page=1000):
        """Every row of `SELECT * FROM entity [WHERE where]`, paged with STARTPOSITION."""
        rows, start = [], 1
        while True:
            got = self.qbo_query(realm, "SELECT * FROM %s%s STARTPOSITION %d MAXRESULTS %d" % (
                entity, " WHERE " + where if where else "", start, page)).get(entity, [])
            rows.extend(got)
            if len(got) < page:
                return rows
            start += page

    # Seeding helpers: HubSpot objects of one portal, QBO entities of one realm.
    def seed_hubspot(self, portal, **objects):
        self.seed({"hubspot": {"portals": [{"portalId": portal, "objects": objects}]}})

    def seed_qbo(self, realm, **entities):
        self.seed({"qbo": {"realms": [dict(entities, realm_id=realm)]}})


DOC_KINDS = ("Invoice", "Estimate", "SalesReceipt", "RefundReceipt", "Payment", "Purchase")


def docs_for_event(qbo_state, event_id, kinds=DOC_KINDS):
    """[(kind, entity)] of every document whose PrivateNote names event_id (design §4
    step 8: the event id is written into the document)."""
    pat = re.compile(r"(^|\s)" + re.escape(event_id) + r"($|\s)")
    out = []
    for k in kinds:
        for d in qbo_state.get(k, []):
            if pat.search(d.get("PrivateNote") or ""):
                out.append((k, d))
    return out


def sales_lines(doc):
    return [l for l in doc.get("Line", []) if l.get("DetailType") == "SalesItemLineDetail"]


# ---- events --------------------------------------------------------------------------------

class Event:
    """One input event: its id, Kafka key and value bytes (and the dict it came from)."""

    def __init__(self, id, key, value, doc=None):
        self.id, self.key, self.value, self.doc = id, key, value, doc
        self.partition = self.offset = self.timestamp_ms = None

    @property
    def coords(self):
        """Where it was produced, as the DLQ's hsqb-original-* headers and an undecodable
        event's result id name it."""
        return "%s:%s:%s" % (TOPIC_ACTIONS, self.partition, self.offset)

    def __repr__(self):
        return "<Event %s %s>" % (self.id, self.key)


CANONICAL = {"DEAL": "DEAL", "0-3": "DEAL", "deals": "DEAL", "QUOTE": "QUOTE", "0-14": "QUOTE",
             "quotes": "QUOTE", "COMMERCE_PAYMENT": "COMMERCE_PAYMENT",
             "0-101": "COMMERCE_PAYMENT", "commerce_payments": "COMMERCE_PAYMENT"}


def new_event_id(portal=PORTAL1):
    # HubSpot callbackIds look like ap-<portal>-<enrollment>-<action>-<index>.
    return "ap-%d-%s-7-0" % (portal, uuid.uuid4().hex[:20])


def make_event(action, object_type, object_id, realm, portal=PORTAL1, event_id=None,
               time_=None, **inputs):
    """A CloudEvent per schemas/action-event.schema.json. inputs are inputFields (strings);
    None values are dropped."""
    eid = event_id or new_event_id(portal)
    fields = {"qbo_realm_id": realm}
    fields.update({k: v for k, v in inputs.items() if v is not None})
    doc = {
        "specversion": "1.0",
        "id": eid,
        "type": "hsqb.action." + action,
        "source": "hubspot://portal/%d/workflow/192814114" % portal,
        "time": time_ or rfc3339_now(),
        "datacontenttype": "application/json",
        "data": {
            "callbackId": eid,
            "origin": {"portalId": portal, "actionDefinitionId": 10646377,
                       "actionDefinitionVersion": 1},
            "context": {"source": "WORKFLOWS", "workflowId": 192814114},
            "object": {"objectId": object_id, "objectType": object_type},
            "inputFields": fields,
        },
    }
    key = "%d:%s:%s" % (portal, CANONICAL[object_type], object_id)
    return Event(eid, key.encode(), json.dumps(doc, ensure_ascii=False).encode("utf-8"), doc)


# ---- results and dead letters -------------------------------------------------------------

class Record:
    """A consumed Kafka record; .json is the parsed value (results) or None."""

    def __init__(self, rec):
        self.topic, self.partition, self.offset = rec.topic, rec.partition, rec.offset
        self.key, self.value, self.timestamp = rec.key, rec.value, rec.timestamp
        self.headers = {}
        for k, v in rec.headers or []:
            self.headers[k] = v  # last occurrence wins (schemas/headers.md)
        self.json = None

    def header(self, name):
        v = self.headers.get(name)
        return None if v is None else v.decode("utf-8")

    def __repr__(self):
        return "<%s:%d:%d %r>" % (self.topic, self.partition, self.offset, (self.json or {}).get(
            "data", {}).get("status") if self.json else self.value[:80])


class Collector(threading.Thread):
    """Reads hsqb.results and hsqb.actions.dlq from the beginning for the whole session,
    without a consumer group, validating every result against its schema."""

    def __init__(self, bootstrap):
        super().__init__(daemon=True, name="hsqb-collector")
        self.bootstrap = bootstrap
        with open(SCHEMA_DIR / "result-event.schema.json", encoding="utf-8") as f:
            self.validator = jsonschema.Draft202012Validator(json.load(f))
        self.cond = threading.Condition()
        self.results = {}  # input id (or topic:partition:offset) -> [Record]
        self.dlq = {}  # "topic:partition:offset" and hsqb-event-id -> [Record]
        self.all_results = []
        self.invalid = []  # (Record, problem)
        self.ready = threading.Event()
        self.error = None
        self._halt = threading.Event()

    def run(self):
        try:
            c = KafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None,
                              enable_auto_commit=False, fetch_max_wait_ms=100)
            tps = [TopicPartition(TOPIC_RESULTS, p) for p in c.partitions_for_topic(TOPIC_RESULTS)]
            tps += [TopicPartition(TOPIC_DLQ, p) for p in c.partitions_for_topic(TOPIC_DLQ)]
            c.assign(tps)
            c.seek_to_beginning()
            self.ready.set()
            while not self._halt.is_set():
                batch = c.poll(timeout_ms=100)
                if batch:
                    with self.cond:
                        for recs in batch.values():
                            for rec in recs:
                                self._add(Record(rec))
                        self.cond.notify_all()
            c.close()
        except Exception as e:  # surfaced by wait_* and start()
            self.error = e
            self.ready.set()

    def _add(self, r):
        if r.topic == TOPIC_DLQ:
            # Indexed by where the event was first consumed (always present) and, when
            # the worker could read it, by the event id too.
            coords = "%s:%s:%s" % (r.header("hsqb-original-topic"),
                                   r.header("hsqb-original-partition"),
                                   r.header("hsqb-original-offset"))
            self.dlq.setdefault(coords, []).append(r)
            eid = r.header("hsqb-event-id")
            if eid and eid != coords:
                self.dlq.setdefault(eid, []).append(r)
            return
        self.all_results.append(r)
        try:
            r.json = json.loads(r.value.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            self.invalid.append((r, "not JSON: %s" % e))
            return
        errs = sorted(self.validator.iter_errors(r.json), key=lambda e: list(e.path))
        if errs:
            self.invalid.append((r, "; ".join("%s: %s" % ("/".join(map(str, e.path)), e.message)
                                             for e in errs[:3])))
        rid = r.json.get("id") if isinstance(r.json, dict) else None
        if isinstance(rid, str) and rid.endswith(":result"):
            self.results.setdefault(rid[:-len(":result")], []).append(r)
        else:
            self.invalid.append((r, "result id %r does not end with :result" % (rid,)))

    def wait_any(self, keys, timeout, on_timeout=None):
        """(key, [Record]) for the first of `keys` that has a result."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for k in keys:
                    if self.results.get(k):
                        return k, list(self.results[k])
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(min(left, 0.5))
        msg = "no result under any of %s after %.0fs" % (keys, timeout)
        raise AssertionError(msg + ("\n" + on_timeout() if on_timeout else ""))

    def stop(self):
        self._halt.set()
        self.join(timeout=5)

    def snapshot(self, ids, which="results"):
        src = self.results if which == "results" else self.dlq
        with self.cond:
            return {i: list(src.get(i, [])) for i in ids}

    def wait(self, ids, timeout, count=1, which="results", on_timeout=None):
        """{id: [Record]} once every id has at least `count` records."""
        ids = list(ids)
        src = self.results if which == "results" else self.dlq
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                if self.error:
                    raise RuntimeError("result collector failed: %r" % self.error)
                missing = [i for i in ids if len(src.get(i, [])) < count]
                if not missing:
                    return {i: list(src[i]) for i in ids}
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(min(left, 0.5))
        msg = "%d of %d events have no %s after %.0fs (e.g. %s)" % (
            len(missing), len(ids), which if count == 1 else "%d %s" % (count, which), timeout,
            ", ".join(missing[:5]))
        if on_timeout:
            msg += "\n" + on_timeout()
        raise AssertionError(msg)


# ---- worker replicas --------------------------------------------------------------------

class Replica:
    """One `hsqb-worker run` process; its stdout (JSON log lines) and stderr go to files."""

    command = "run"

    def __init__(self, harness, name, extra_env):
        self.h = harness
        self.name = name
        self.metrics_port = free_port()
        self.env = harness.worker_env(extra_env)
        self.env["HSQB_METRICS_LISTEN"] = "127.0.0.1:%d" % self.metrics_port
        self.log_path = harness.logdir / ("%s.log" % name)
        self.err_path = harness.logdir / ("%s.stderr" % name)
        self.proc = None
        self.returncode = None

    def start(self):
        out = open(self.log_path, "ab")
        err = open(self.err_path, "ab")
        try:
            self.proc = subprocess.Popen([str(worker_binary()), self.command], env=self.env,
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                         start_new_session=True, cwd=str(ROOT))
        finally:
            out.close()
            err.close()
        self.h.all_replicas.append(self)
        return self

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.metrics_port, path)

    def wait_ready(self, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive():
                raise RuntimeError("%s: hsqb-worker %s exited with status %s before it was "
                                   "ready:\n%s" % (self.name, self.command, self.proc.poll(),
                                                   self.tail()))
            st, _ = http_get(self.url("/readyz"), timeout=2)
            if st == 200:
                return
            if time.monotonic() > deadline:
                raise RuntimeError("%s: /readyz not 200 within %ds (last %s):\n%s" % (
                    self.name, timeout, st, self.tail()))
            time.sleep(0.1)

    def stop(self, timeout=30):
        """SIGTERM and wait; SIGKILL after timeout. Returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.returncode = "killed after SIGTERM timeout"
                return self.returncode
        self.returncode = self.proc.returncode
        return self.returncode

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.returncode = self.proc.returncode if self.proc else None

    def metrics_text(self):
        st, body = http_get(self.url("/metrics"))
        if st != 200:
            raise AssertionError("%s: GET /metrics -> %s" % (self.name, st))
        return body

    def log_lines(self):
        """(parsed JSON objects, lines that are not JSON objects) of stdout."""
        good, bad = [], []
        try:
            with open(self.log_path, "rb") as f:
                for raw in f:
                    line = raw.decode("utf-8", "replace").rstrip("\n")
                    if not line:
                        continue
                    try:
                        o = json.loads(line)
                    except ValueError:
                        bad.append(line)
                        continue
                    (good if isinstance(o, dict) else bad).append(o if isinstance(o, dict)
                                                                  else line)
        except FileNotFoundError:
            pass
        return good, bad

    def tail(self, n=15):
        out = []
        for p in (self.err_path, self.log_path):
            try:
                lines = p.read_bytes().decode("utf-8", "replace").splitlines()[-n:]
            except FileNotFoundError:
                continue
            out.append("--- %s (last %d lines)\n%s" % (p, len(lines), "\n".join(lines)))
        return "\n".join(out)


# ---- the ingress: HubSpot's side, played by this code ---------------------------------------

APP_SECRET = "hsqb-e2e-app-secret-1"  # the HubSpot app's client secret the ingress checks


def sign(method, url, body, secret=APP_SECRET, version="v3", timestamp_ms=None):
    """HubSpot's signature headers for one request (reference/hubspot-api.md §3.3),
    computed here with Python's hmac/hashlib, independently of the worker's C code."""
    if version == "v3":
        ts = str(int(time.time() * 1000) if timestamp_ms is None else timestamp_ms)
        mac = hmac.new(secret.encode(), method.encode() + url.encode() + body + ts.encode(),
                       hashlib.sha256).digest()
        return {"X-HubSpot-Signature-v3": base64.b64encode(mac).decode(),
                "X-HubSpot-Request-Timestamp": ts}
    h = hashlib.sha256(secret.encode() + (b"" if version == "v1" else
                                          method.encode() + url.encode()) + body).hexdigest()
    return {"X-HubSpot-Signature": h, "X-HubSpot-Signature-Version": version}


def execution_request(ev):
    """The execution request HubSpot POSTs to the actionUrl for event ev (its data)."""
    return json.dumps(ev.doc["data"]).encode()


class Ingress(Replica):
    """One `hsqb-worker ingress` process on a free port; public_url is where it listens."""

    command = "ingress"

    def __init__(self, harness, name, extra_env):
        super().__init__(harness, name, extra_env)
        self.port = free_port()
        self.public_url = "http://127.0.0.1:%d" % self.port
        self.env.setdefault("HSQB_INGRESS_LISTEN", "127.0.0.1:%d" % self.port)
        self.env.setdefault("HSQB_INGRESS_PUBLIC_URL", self.public_url)
        self.env.setdefault("HSQB_INGRESS_CLIENT_SECRETS", APP_SECRET)
        self.env.setdefault("HSQB_INGRESS_PRODUCE_TIMEOUT", "3s")

    def post(self, path, body, headers=None, sign_as="v3", secret=APP_SECRET, timestamp_ms=None,
             content_type="application/json", url=None, timeout=20):
        """POST body (bytes) to path, signed like HubSpot (sign_as v3/v2/v1, None = unsigned).
        Returns (status, parsed JSON answer or text)."""
        url = url or self.public_url + path
        hdrs = {"Content-Type": content_type} if content_type else {}
        if sign_as:
            hdrs.update(sign("POST", url, body, secret, sign_as, timestamp_ms))
        hdrs.update(headers or {})
        req = urllib.request.Request(url, data=body, headers=hdrs, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                st, raw = r.status, r.read()
        except urllib.error.HTTPError as e:
            st, raw = e.code, e.read()
        try:
            return st, json.loads(raw)
        except ValueError:
            return st, raw.decode("utf-8", "replace")

    def action(self, ev, action=None, **kw):
        """POST ev's execution request to /hubspot/actions/<action>."""
        action = action or ev.doc["type"].rsplit(".", 1)[1]
        return self.post("/hubspot/actions/" + action, execution_request(ev), **kw)


def read_topic(bootstrap, topic, timeout=10):
    """Every record of topic now (python3-kafka, no group), oldest first per partition."""
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                      consumer_timeout_ms=2000)
    try:
        tps = [TopicPartition(topic, p) for p in (c.partitions_for_topic(topic) or ())]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        ends = c.end_offsets(tps)
        out = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(c.position(tp) < ends[tp] for tp in tps):
            for recs in c.poll(timeout_ms=500).values():
                out.extend(recs)
        return out
    finally:
        c.close()


def parse_metrics(text):
    """Prometheus text -> ({(name, frozenset(labels.items())): value}, {name: type})."""
    samples, types = {}, {}
    lab_re = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            parts = line.split()
            if len(parts) >= 4:
                types[parts[2]] = parts[3]
            continue
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)", line)
        if not m:
            continue
        labels = frozenset((k, v.encode().decode("unicode_escape"))
                           for k, v in lab_re.findall(m.group(3) or ""))
        try:
            samples[(m.group(1), labels)] = float(m.group(4))
        except ValueError:
            pass
    return samples, types


def metric_sum(samples, name, **labels):
    total = 0.0
    for (n, labs), v in samples.items():
        if n != name:
            continue
        d = dict(labs)
        if all(d.get(k) == val for k, val in labels.items()):
            total += v
    return total


# ---- the harness ---------------------------------------------------------------------------

DEFAULT_WORKER_ENV = {
    "HSQB_KAFKA_GROUP_ID": GROUP,
    "HSQB_LOG_LEVEL": "debug",  # the most log text to check for leaked secrets
    "HSQB_CLAIM_LEASE": "5s",  # a dead replica's claims lapse quickly
    "HSQB_HTTP_TIMEOUT": "3s",  # stalled sandbox answers time out quickly
    "HSQB_RETRY_SCHEDULE": "1s,2s,4s",
    "HSQB_SHUTDOWN_DRAIN_TIMEOUT": "10s",
    "HSQB_KAFKA_REVOKE_TIMEOUT": "5s",
    # reset() reloads the sandbox, which then hands out the seed's QBO ids again (real QBO
    # never reuses an id), and drops the Redis mappings; replicas outlive a reset, so their
    # in-process copies would name another test's records. Tests of that cache turn it on.
    "HSQB_CACHE_LOCAL_TTL": "0",
    # librdkafka pass-through: notice a dead member in seconds, lag metrics every second.
    "HSQB_KAFKA__SESSION_TIMEOUT_MS": "6000",
    "HSQB_KAFKA__HEARTBEAT_INTERVAL_MS": "1000",
    "HSQB_KAFKA__STATISTICS_INTERVAL_MS": "1000",
}

# Every test runs with tokens encrypted at rest, as production should (README, "Secrets at
# rest"); the worker and `credentials` get the key ring, and tests that look at a stored
# token open it with unseal(), an implementation of the format independent of the C one.
SEAL_KEY_ID = "e2e1"
SEAL_KEY = bytes(range(100, 132))
DEFAULT_WORKER_ENV["HSQB_REDIS_ENCRYPTION_KEYS"] = "%s %s" % (
    SEAL_KEY_ID, base64.b64encode(SEAL_KEY).decode())
DEFAULT_WORKER_ENV["HSQB_REDIS_REQUIRE_ENCRYPTION"] = "false"  # tests store plain text too


def unseal(key, field, value):
    """A stored token (bytes or str) as the worker reads it: v1:<key id>:<base64url of
    nonce | ciphertext | tag>, bound to key (prefix dropped) and field ("" for a string
    key); any other text is a token stored in plain text. None stays None."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode()
    if not value.startswith("v1:"):
        return value
    _, kid, b64 = value.split(":", 2)
    raw = base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4))
    name = key[len(KEY_PREFIX):] if key.startswith(KEY_PREFIX) else key
    ad = b"\0".join([b"hsqb-seal-v1", kid.encode(), name.encode(), field.encode()]) + b"\0"
    assert kid == SEAL_KEY_ID, "sealed with key %s" % kid
    return AESGCM(SEAL_KEY).decrypt(raw[:12], raw[12:], ad).decode()


class Harness:
    def __init__(self, logdir=None, worker_env=None, kafka=None, kafka_brokers=1,
                 kafka_security="plaintext"):
        """kafka: "apache" (Apache Kafka, KRaft) or "mock" (librdkafka's mock cluster);
        default $KAFKA, else mock. kafka_brokers and kafka_security apply to apache."""
        self.kafka_kind = kafka or os.environ.get("KAFKA") or "mock"
        self.kafka_brokers = kafka_brokers
        self.kafka_security = kafka_security
        self.logdir = pathlib.Path(logdir or tempfile.mkdtemp(prefix="hsqb-e2e-logs-"))
        self.logdir.mkdir(parents=True, exist_ok=True)
        self.stack_dir = None
        self.env = {}
        self.base_worker_env = dict(DEFAULT_WORKER_ENV, **(worker_env or {}))
        self.replicas = []  # the current replica set
        self.all_replicas = []  # every process ever started (logs to scan)
        self.ingresses = []  # ingress processes started by start_ingress()
        self.sandbox = None
        self.redis = None
        self.producer = None
        self.collector = None
        self.seen_secrets = set()
        self.unbound = set()  # realms store_credentials leaves unbound (cross_portal)
        self._gen = 0

    # -- lifecycle --
    def start(self, replicas=2):
        """Stack up, clients connected, credentials stored, `replicas` workers ready.
        On failure everything started so far is stopped before the exception propagates."""
        try:
            self.start_stack()
            self.store_credentials()
            if replicas:
                self.start_replicas(replicas)
        except BaseException:
            self.stop()
            raise
        return self

    def start_stack(self):
        need = ["hsqb-sandbox", "hsqb-worker"]
        need.append("kafka-mock" if self.kafka_kind == "mock" else "kafka/libs/.complete")
        for b in need:
            if not (build_dir() / b).exists():
                raise RuntimeError("%s missing: run make first (make kafka-dist for Apache "
                                   "Kafka)" % (build_dir() / b))
        # The stack dir holds a UNIX socket, so keep its path short (108-byte limit).
        self.stack_dir = pathlib.Path(tempfile.mkdtemp(prefix="hsqb-stack-"))
        env = dict(os.environ, BUILD=str(build_dir()), KAFKA=self.kafka_kind,
                   KAFKA_BROKERS=str(self.kafka_brokers), KAFKA_SECURITY=self.kafka_security)
        # Own session: a Ctrl-C at the terminal reaches us, not the stack's daemons, so
        # stop() can take them down in order.
        r = subprocess.run([str(STACK), "up", str(self.stack_dir)], env=env,
                           capture_output=True, text=True, timeout=90, start_new_session=True)
        if r.returncode != 0:
            raise RuntimeError("tests/stack/stack up failed (%d):\n%s%s" % (
                r.returncode, r.stdout, r.stderr))
        for line in (self.stack_dir / "env").read_text().splitlines():
            if "=" in line:
                k, v = line.split("=", 1)
                self.env[k] = v
        self.sandbox = Sandbox(self.env["SANDBOX_URL"])
        self.redis = redislib.Redis(host="127.0.0.1", port=int(self.env["REDIS_PORT"]),
                                    socket_timeout=10)
        self.producer = KafkaProducer(bootstrap_servers=self.env["KAFKA_BOOTSTRAP"], acks="all",
                                      linger_ms=2, retries=5,
                                      max_in_flight_requests_per_connection=1)
        self.collector = Collector(self.env["KAFKA_BOOTSTRAP"])
        self.collector.start()
        self.collector.ready.wait(30)
        if self.collector.error or not self.collector.ready.is_set():
            raise RuntimeError("result collector did not start: %r" % self.collector.error)

    def stop(self):
        """Stop every worker (SIGTERM), the clients and the stack. Idempotent, and each
        step runs even when an earlier one fails; returns {replica name: exit status} of
        the replicas it stopped."""
        statuses = {}
        for r in list(self.all_replicas):
            if r.alive():
                try:
                    statuses[r.name] = r.stop(timeout=20)
                except Exception as e:
                    statuses[r.name] = repr(e)
                    r.kill()
        self.replicas = []
        steps = []
        if self.collector:
            steps.append(self.collector.stop)
        if self.producer:
            steps.append(lambda: self.producer.close(timeout=5))
        if self.stack_dir and (self.stack_dir / "env").exists():
            steps.append(lambda: subprocess.run([str(STACK), "down", str(self.stack_dir)],
                                                capture_output=True, timeout=60))
        for step in steps:
            try:
                step()
            except Exception:
                pass
        self.collector = self.producer = None
        if self.stack_dir and self.stack_dir.exists():
            for p in self.stack_logs():
                shutil.copy(p, self.logdir / p.name)
            shutil.rmtree(self.stack_dir, ignore_errors=True)
        return statuses

    def stack_logs(self):
        """The stack's own log files (redis, Kafka, sandbox), while the stack dir exists."""
        if not self.stack_dir:
            return []
        return sorted(p for p in self.stack_dir.glob("*.log")
                      if p.name in STACK_LOGS or p.name.startswith("kafka-"))

    # -- the Apache Kafka of the stack --
    def kafka_ctl(self, what, node="all"):
        """what: kill (SIGKILL), stop (SIGTERM, controlled shutdown) or start one broker node
        (1..kafka_brokers) or all of them; start returns once the cluster answers."""
        assert self.kafka_kind == "apache", "kafka_ctl needs the Apache Kafka stack"
        r = subprocess.run([str(STACK), "kafka-" + what, str(self.stack_dir), str(node)],
                           env=dict(os.environ, BUILD=str(build_dir())), capture_output=True,
                           text=True, timeout=120, start_new_session=True)
        if r.returncode != 0:
            raise RuntimeError("stack kafka-%s %s failed:\n%s%s" % (what, node, r.stdout,
                                                                   r.stderr))

    def kafka_admin(self, *args):
        """tests/stack/kafka_admin.py against this stack's brokers; returns stdout."""
        r = subprocess.run(["/usr/bin/python3", str(KAFKA_ADMIN), args[0],
                            self.env["KAFKA_BOOTSTRAP"]] + [str(a) for a in args[1:]],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError("kafka_admin %s failed:\n%s%s" % (args, r.stdout, r.stderr))
        return r.stdout

    # -- workers --
    def worker_env(self, extra=None):
        env = {k: v for k, v in os.environ.items() if not k.startswith("HSQB_")}
        env.update({k: v for k, v in self.env.items() if k.startswith("HSQB_")})
        env.update(self.base_worker_env)
        env.update(extra or {})
        return {k: v for k, v in env.items() if v is not None}

    def new_replica(self, extra_env=None, name=None):
        self._gen += 1
        return Replica(self, name or "worker-%d" % self._gen, extra_env)

    def start_ingress(self, extra_env=None, timeout=40):
        """A ready `hsqb-worker ingress` (stopped by stop(), or by the caller)."""
        self._gen += 1
        ing = Ingress(self, "ingress-%d" % self._gen, extra_env).start()
        self.ingresses.append(ing)
        ing.wait_ready(timeout)
        return ing

    def actions_records(self, ids):
        """{event id: [hsqb.actions records]} of the given ids (read from the start)."""
        want = set(ids)
        needles = [i.encode() for i in want]
        out = {}
        for r in read_topic(self.env["KAFKA_BOOTSTRAP"], TOPIC_ACTIONS):
            # other tests' poison records (nesting deeper than Python's recursion limit,
            # undecodable bytes) share the topic: parse only records naming a wanted id
            if r.value is None or not any(n in r.value for n in needles):
                continue
            try:
                eid = json.loads(r.value)["id"]
            except (ValueError, KeyError, TypeError, RecursionError):
                continue
            if eid in want:
                out.setdefault(eid, []).append(r)
        return out

    def start_replicas(self, n, extra_env=None, timeout=40):
        new = [self.new_replica(extra_env).start() for _ in range(n)]
        self.replicas.extend(new)
        for r in new:
            r.wait_ready(timeout)
        return new

    def partition_owners(self, timeout=40, partitions=6):
        """{partition: replica} of hsqb.actions now. One undecodable probe message goes to
        every partition (an INVALID_EVENT outcome costs no API call); the replica whose
        outcome log line names a probe's partition and offset holds that partition.
        Returning also means no rebalance is pending: every partition is being consumed."""
        probes = [self.produce_raw(b"partition probe", key=b"probe", partition=p)
                  for p in range(partitions)]
        self.wait_results([pr.coords for pr in probes], timeout)
        want = {(pr.partition, pr.offset): pr.partition for pr in probes}
        own = {}
        deadline = time.monotonic() + 5
        while len(own) < partitions and time.monotonic() < deadline:
            for r in self.replicas:
                for o in r.log_lines()[0]:
                    part = [v for k, v in o.items() if "partition" in k and isinstance(v, int)]
                    off = [v for k, v in o.items() if "offset" in k and isinstance(v, int)]
                    if part and off and (part[0], off[0]) in want:
                        own[part[0]] = r
            time.sleep(0.1)
        if len(own) < partitions:
            raise AssertionError("no outcome log line names the probes of partitions %s" % (
                sorted(set(range(partitions)) - set(own))))
        return own

    def stop_replicas(self, replicas=None):
        statuses = {}
        for r in list(replicas if replicas is not None else self.replicas):
            statuses[r.name] = r.stop()
            if r in self.replicas:
                self.replicas.remove(r)
        return statuses

    @contextlib.contextmanager
    def replicas_with(self, extra_env, n=2):
        """For the block, the current replicas replaced by n started with extra_env (a
        module's own knobs); n with the standard settings again afterwards."""
        self.stop_replicas()
        self.start_replicas(n, extra_env=extra_env)
        try:
            yield self
        finally:
            self.stop_replicas()
            self.start_replicas(n)

    def restart(self, replica, timeout=40, wait=True):
        """A new process with the same settings in the place of `replica` (ready when
        `wait`, else just started)."""
        self._gen += 1
        extra = {k: v for k, v in replica.env.items() if k.startswith("HSQB_")}
        extra.pop("HSQB_METRICS_LISTEN", None)
        r = Replica(self, "worker-%d" % self._gen, extra).start()
        idx = self.replicas.index(replica) if replica in self.replicas else None
        if idx is not None:
            self.replicas[idx] = r
        else:
            self.replicas.append(r)
        if wait:
            r.wait_ready(timeout)
        return r

    def cli(self, args, stdin=None, name="cli", env=None):
        """Run hsqb-worker with args (output kept in the log dir), env (a dict) added to the
        workers' environment. Returns CompletedProcess."""
        r = subprocess.run([str(worker_binary())] + list(args), env=self.worker_env(env),
                           input=stdin, capture_output=True, text=True, timeout=60,
                           cwd=str(ROOT))
        with open(self.logdir / "cli.log", "a", encoding="utf-8") as f:
            f.write("$ hsqb-worker %s -> %d\n%s%s" % (" ".join(args), r.returncode, r.stdout,
                                                      r.stderr))
        return r

    def store_credentials(self, realms=None, portals=None):
        """The seed's refresh token of each realm, bound to its REALM_PORTAL portal (a
        binding another test left elsewhere is undone first), and each portal's HubSpot
        token, with `hsqb-worker credentials`."""
        for realm in QBO_REALMS if realms is None else realms:
            args = ["credentials", "qbo", "--realm", realm, "--refresh-token", "-"]
            portal = None if realm in self.unbound else REALM_PORTAL.get(realm)
            if portal:
                args += ["--portal", str(portal)]
            r = self.cli(args, stdin=QBO_REFRESH_TOKENS[realm] + "\n")
            if r.returncode == 1 and "is bound to portal" in r.stderr:
                self.unbind(realm)
                r = self.cli(args, stdin=QBO_REFRESH_TOKENS[realm] + "\n")
            if r.returncode != 0:
                raise RuntimeError("hsqb-worker credentials qbo --realm %s exited %d: %s" % (
                    realm, r.returncode, (r.stderr or r.stdout).strip()[:500]))
        for portal in (PORTAL1, PORTAL2) if portals is None else portals:
            r = self.cli(["credentials", "hubspot", "--portal", str(portal), "--token", "-"],
                         stdin=HUBSPOT_TOKENS[portal] + "\n")
            if r.returncode != 0:
                raise RuntimeError("hsqb-worker credentials hubspot --portal %s exited %d: %s" % (
                    portal, r.returncode, (r.stderr or r.stdout).strip()[:500]))

    def bind(self, realm, portal):
        """`credentials bind`; the CompletedProcess (exit 1: bound to another portal)."""
        return self.cli(["credentials", "bind", "--realm", realm, "--portal", str(portal)])

    def unbind(self, realm):
        """`credentials unbind` from whichever portal realm is bound to."""
        r = self.cli(["credentials", "unbind", "--realm", realm])
        if r.returncode != 0:
            raise RuntimeError("hsqb-worker credentials unbind --realm %s exited %d: %s" % (
                realm, r.returncode, (r.stderr or r.stdout).strip()[:500]))

    @contextlib.contextmanager
    def cross_portal(self, realms=(US1, US2)):
        """For the block, realms unbound (reset() keeps them so): with tenancy.allow_unbound
        (UPGRADE_ENV on the block's replicas) both portals' events may book them, which a
        bound realm refuses. Bound to their REALM_PORTAL portal again afterwards."""
        self.unbound |= set(realms)
        try:
            for realm in realms:
                self.unbind(realm)
            yield self
        finally:
            self.unbound -= set(realms)
            self.store_credentials(realms=list(realms), portals=())

    def check_replicas_alive(self):
        """Names (with exit status and log tail) of current replicas that died."""
        dead = []
        for r in self.replicas:
            if not r.alive():
                dead.append("%s exited with status %s\n%s" % (r.name, r.proc.poll(), r.tail()))
        return dead

    # -- between tests --
    def reset(self):
        """Fresh QuickBooks/HubSpot state: sandbox reset (seed reloaded, faults, request log,
        settings back to the start) and the worker's Redis mapping caches dropped, since
        the sandbox hands out QBO ids again from the seed after a reset (real QBO never
        reuses one). Event ids are fresh per test, so dedup markers stay."""
        self.sandbox.reset()
        self.flush_redis("%smap:*" % KEY_PREFIX)
        self.flush_redis("%soptions:*" % KEY_PREFIX)  # the ingress's options cache
        self.flush_redis("%scompany:*" % KEY_PREFIX)  # settings pages' company defaults
        # The reset also revoked every access token the sandbox had issued. Storing the
        # refresh tokens again (the same ones: rotation is off by default) clears the
        # access tokens the worker keeps in Redis, as reconnecting a company would.
        self.store_credentials(portals=())

    def flush_redis(self, pattern):
        keys = list(self.redis.scan_iter(match=pattern, count=1000))
        for i in range(0, len(keys), 500):
            self.redis.delete(*keys[i:i + 500])
        return len(keys)

    # -- producing --
    def event(self, action, object_type, object_id, realm, portal=PORTAL1, **inputs):
        return make_event(action, object_type, object_id, realm, portal=portal, **inputs)

    def produce(self, *events, partition=None, content_type=True):
        """Produce and wait for the broker's ack; sets ev.partition/offset/timestamp_ms."""
        futs = []
        for ev in events:
            ts = int(time.time() * 1000)
            headers = [("content-type", b"application/cloudevents+json")] if content_type else []
            futs.append((ev, ts, self.producer.send(TOPIC_ACTIONS, key=ev.key, value=ev.value,
                                                    headers=headers, partition=partition,
                                                    timestamp_ms=ts)))
        self.producer.flush(timeout=30)
        for ev, ts, f in futs:
            md = f.get(timeout=30)
            ev.partition, ev.offset, ev.timestamp_ms = md.partition, md.offset, ts
        return events[0] if len(events) == 1 else list(events)

    def produce_raw(self, value, key=None, headers=None, partition=None):
        ts = int(time.time() * 1000)
        md = self.producer.send(TOPIC_ACTIONS, key=key, value=value, headers=headers or [],
                                partition=partition, timestamp_ms=ts).get(timeout=30)
        ev = Event(None, key, value)
        ev.partition, ev.offset, ev.timestamp_ms = md.partition, md.offset, ts
        return ev

    # -- outcomes --
    def diagnose(self):
        parts = []
        for r in self.replicas:
            parts.append("%s (pid %s) %s" % (r.name, r.pid, "alive" if r.alive() else
                                             "exited %s" % r.proc.poll()))
            parts.append(r.tail(8))
        return "\n".join(parts)

    def wait_results(self, ids, timeout=30, count=1):
        """{event id: [result Records]} once each id has `count` results."""
        return self.collector.wait(ids, timeout, count, "results", on_timeout=self.diagnose)

    def wait_result(self, ev, timeout=30):
        """The first result of one event, parsed."""
        return self.wait_results([ev.id], timeout)[ev.id][0].json

    def wait_dlq(self, keys, timeout=30):
        return self.collector.wait(keys, timeout, 1, "dlq", on_timeout=self.diagnose)

    def results_for(self, ids):
        return self.collector.snapshot(ids, "results")

    def dlq_for(self, ids):
        return self.collector.snapshot(ids, "dlq")

    def event_marker(self, event_id):
        """The raw Redis value of hsqb:evt:{id} (any type), or None."""
        tag = event_id.replace("%", "%25").replace("{", "%7B").replace("}", "%7D")
        key = "%sevt:{%s}" % (KEY_PREFIX, tag)  # redis_tag_escape
        t = self.redis.type(key).decode()
        if t == "none":
            return None
        if t == "string":
            return self.redis.get(key).decode("utf-8", "replace")
        if t == "hash":
            return {k.decode(): v.decode("utf-8", "replace")
                    for k, v in self.redis.hgetall(key).items()}
        return "<%s>" % t

    def secrets(self):
        """Every secret the worker could have seen: the seeds' tokens and secrets, and
        the tokens that sit in Redis now or did at any earlier collect_secrets() call
        (refreshed access tokens, rotated refresh tokens, stored HubSpot tokens)."""
        self.collect_secrets()
        out = set(seeded_secrets()) | self.seen_secrets
        out.add(self.env.get("HSQB_OAUTH_CLIENT_SECRET", ""))
        out.add(APP_SECRET)
        return {s for s in out if s and len(s) >= 12}

    def stored_token(self, key, field=""):
        """The token stored at key (a hash field, or a string key when field is ""),
        opened; None when there is none."""
        v = self.redis.hget(key, field) if field else self.redis.get(key)
        return unseal(key, field, v)

    def collect_secrets(self):
        """Remember the tokens now stored in Redis (called between tests, since later
        refreshes and resets replace them)."""
        out = self.seen_secrets
        for key in self.redis.scan_iter(match="%soauth:*" % KEY_PREFIX):
            if self.redis.type(key) == b"hash":
                for field, v in self.redis.hgetall(key).items():
                    if field.decode() in ("access_token", "refresh_token"):
                        out.add(unseal(key.decode(), field.decode(), v))
        for key in self.redis.scan_iter(match="%shstoken:*" % KEY_PREFIX):
            if self.redis.type(key) == b"string":
                out.add(unseal(key.decode(), "", self.redis.get(key)))
        for r in self.sandbox.oauth()["realms"].values():
            out.add(r["refresh_token"])
