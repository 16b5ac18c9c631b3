"""Apache Kafka as production runs it (issue 14): a three-broker cluster, and SASL/PLAIN
over TLS. Each test here has a stack of its own (not the session's): its own brokers,
redis-server and sandbox, two replicas, python3-kafka clients.

- Three KRaft nodes, topics with replication factor 3 and min.insync.replicas=2 (as
  deploy/README.md asks): the broker leading most partitions is SIGKILLed mid-run;
  leadership moves, the idempotent producer and the consumer group follow it, and the
  fault suite's invariant check holds (nothing lost, nothing created twice).
- One broker whose worker listener is SASL_SSL (a CA and certificate made with openssl at
  test time, the password in a file): the worker connects through the kafka.*
  pass-through settings (HSQB_KAFKA__SECURITY_PROTOCOL, ..._SASL_PASSWORD_FILE,
  ..._SSL_CA_LOCATION), events flow end to end, and the password appears in no log line,
  no `config dump`, no metric.
"""
import collections
import pathlib
import time

import pytest

import harness
from harness import US1, US2
from test_faults import FAST, UNLIMITED_SANDBOX, check_stream, stream, summary, wait_progress


@pytest.fixture
def own_stack(request, hsqb):
    """A Harness of its own (kwargs from the test's `stack` mark), two FAST replicas."""
    kw = request.node.get_closest_marker("stack").kwargs
    logdir = harness.build_dir() / "test-logs" / "integration" / request.node.name
    h = harness.Harness(logdir, worker_env=FAST, kafka="apache", **kw)
    h.start(replicas=2)
    h.sandbox.config(UNLIMITED_SANDBOX)
    try:
        # the fault streams book US1 and US2 from both portals (see test_faults.FAST)
        with h.cross_portal():
            yield h
    finally:
        statuses = h.stop()
    # (sanitizer reports in these replicas' stderr: test_zzz_... of test_worker_e2e.py)
    assert statuses and all(v == 0 for v in statuses.values()), statuses


def leaders(h, topic):
    out = {}
    for row in h.kafka_admin("leaders", topic).splitlines():
        p, ld = row.split()
        out[int(p)] = int(ld)
    return out


@pytest.mark.stack(kafka_brokers=3)
def test_three_brokers_partition_leaders_broker_killed_mid_run(own_stack):
    h = own_stack
    t0 = time.monotonic()
    evs = stream(h)
    h.produce(*evs)
    wait_progress(h, evs, 0.3)
    lead = collections.Counter(leaders(h, harness.TOPIC_ACTIONS).values())
    lead.update(leaders(h, harness.TOPIC_RESULTS).values())
    victim = lead.most_common(1)[0][0]
    h.kafka_ctl("kill", victim)
    got, failed = check_stream(h, evs, timeout=180)
    assert not failed
    moved = leaders(h, harness.TOPIC_ACTIONS)
    assert victim not in moved.values(), moved
    summary("3 brokers, broker %d killed (%d re-published)" % (
        victim, sum(len(v) - 1 for v in got.values())), got, failed, t0)
    h.kafka_ctl("start", victim)


@pytest.mark.stack(kafka_security="sasl_ssl")
def test_sasl_ssl_end_to_end_and_the_password_stays_secret(own_stack):
    h = own_stack
    password = pathlib.Path(h.env["KAFKA_SASL_PASSWORD_FILE"]).read_text().strip()
    assert h.env["HSQB_KAFKA__SECURITY_PROTOCOL"] == "SASL_SSL"
    assert h.env["HSQB_KAFKA_BROKERS"] != h.env["KAFKA_BOOTSTRAP"]
    evs = [h.event(a, "DEAL", 1005, r) for a in ("create_invoice", "create_estimate")
           for r in (US1, US2)]
    h.produce(*evs)
    got = h.wait_results([e.id for e in evs], timeout=60)
    for e in evs:
        assert got[e.id][0].json["data"]["status"] == "succeeded", got[e.id][0].json
    # HSQB_KAFKA_BROKERS names the SASL_SSL listener only: results mean the worker is on it
    dump = h.cli(["config", "dump"])
    assert dump.returncode == 0, dump.stderr
    assert "kafka.sasl.password" in dump.stdout, dump.stdout[-1500:]
    texts = {"config dump": dump.stdout + dump.stderr}
    for r in h.replicas:
        texts[r.name + " /metrics"] = r.metrics_text()
    for r in h.all_replicas:
        for p in (r.log_path, r.err_path):
            texts[p.name] = p.read_bytes().decode("utf-8", "replace")
    leaks = [name for name, text in texts.items() if password in text or password[:12] in text]
    assert not leaks, "the SASL password appears in %s" % leaks
