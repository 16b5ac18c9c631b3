"""Faults only a real broker shows (issue 14), on the session's Apache Kafka (KRaft).

Each scenario streams >= 300 mixed events through the replicas while the broker or the
consumer group is disturbed, then runs the fault suite's invariant check (check_stream:
every event has exactly one final outcome, no QBO document exists twice, nothing is
missing, the group's offsets are committed past the stream). Results are at-least-once:
an event may have its stored result published again (same content) when its partition
moves before its offset was committed; each scenario reports how many were, and the
join/leave scenario bounds them (README "Results are at-least-once").

The replicas run with the fault suite's FAST settings (tests/integration/test_faults.py).
"""
import signal
import time

import pytest

import harness
from harness import metric_sum, parse_metrics
from test_faults import (FAST, check_stream, done_count, fleet, prepare, produce_slowly,  # noqa: F401
                         stream, summary, wait_progress)


@pytest.fixture(autouse=True)
def apache_only(hsqb):
    # E2E_KAFKA=mock (a quick local loop) cannot run these: say so, as a failure
    if hsqb.kafka_kind != "apache":
        pytest.fail("needs the Apache Kafka stack (run without E2E_KAFKA=mock)")


def republished(got):
    """Results beyond the first, over all events (each one repeats the stored outcome)."""
    return sum(len(v) - 1 for v in got.values())


def gauge(replicas, name):
    """Sum of a gauge over replicas (one that does not answer counts 0)."""
    total = 0
    for r in replicas:
        try:
            total += metric_sum(parse_metrics(r.metrics_text())[0], name)
        except AssertionError:
            pass
    return total


# ---- the broker SIGKILLed mid-run, back after 5 s ---------------------------------------------

def test_broker_sigkilled_mid_run_and_back_after_5s(fleet):
    """Kafka's only broker dies while results are being produced, offsets committed and
    records held from the retry topic; it comes back on its data 5 s later. The
    idempotent producer's retries, the commits and the held retry records must all carry
    over: nothing lost, nothing created twice."""
    h = fleet
    prepare(h)
    # retry records wait 12 s: long enough to be held in memory when the broker dies
    h.stop_replicas()
    h.start_replicas(2, extra_env=dict(FAST, HSQB_RETRY_SCHEDULE="12s,12s,12s"))
    try:
        t0 = time.monotonic()
        evs = stream(h)
        # QBO's invoice writes fail until a record is held: those events' circuits open
        # and they go through the retry topic
        h.sandbox.add_fault(method="POST", path="/v3/company/*/invoice", vendor="qbo",
                            status=503, body={"Fault": {"Error": [{"code": "10000"}]}})
        h.produce(*evs)
        harness.wait_until(lambda: gauge(h.replicas, "hsqb_retry_held") > 0, 90, 0.1,
                           "a record held from the retry topic")
        h.sandbox.clear_faults()
        wait_progress(h, evs, 0.2)
        held = gauge(h.replicas, "hsqb_retry_held")
        h.kafka_ctl("kill")
        time.sleep(5)
        h.kafka_ctl("start")
        got, failed = check_stream(h, evs, timeout=180)
        assert not failed
        summary("broker kill (%d held at the kill, %d re-published)" % (
            held, republished(got)), got, failed, t0)
        assert held > 0, "no retry record was held when the broker died"
    finally:
        h.stop_replicas()
        h.start_replicas(2, extra_env=FAST)


# ---- replicas joining and leaving -------------------------------------------------------------

def resize(h, n):
    """Start (not waiting until ready) or SIGTERM replicas until there are n."""
    while len(h.replicas) < n:
        h.replicas.append(h.new_replica(FAST).start())
    extra = h.replicas[n:]
    if extra:
        h.stop_replicas(extra)


def test_replicas_join_and_leave_in_a_loop(fleet):
    """3 -> 1 -> 4 -> 2 replicas while 400 events flow: every change is a rebalance with
    events in flight. Re-published results stay within 1 % of the events."""
    h = fleet
    prepare(h)
    t0 = time.monotonic()
    evs = stream(h, n=400)
    producer = produce_slowly(h, evs, 40)
    try:
        for n in (3, 1, 4, 2):
            time.sleep(8)
            resize(h, n)
        producer.join()
        got, failed = check_stream(h, evs, timeout=180)
        assert not failed
        extra = republished(got)
        summary("join/leave 3-1-4-2 (%d re-published)" % extra, got, failed, t0)
        assert extra <= 0.01 * len(evs), "%d of %d results re-published" % (extra, len(evs))
    finally:
        resize(h, 2)
        for r in h.replicas:
            r.wait_ready(60)


# ---- a replica in a crash loop ----------------------------------------------------------------

def test_replica_killed_and_restarted_every_2s_for_2_minutes(fleet):
    """One replica SIGKILLed and started again every 2 s for 2 minutes (a container in a
    crash loop: a Kubernetes pod restarted under its own name) while events flow: the
    group keeps making progress, and in the end every event has its one outcome.

    The replicas are static members (kafka.group.instance.id, deploy/README.md: a pod's
    stable name), as a crash loop needs: a restarted replica rejoins as itself, so the
    others keep their partitions. With dynamic membership every restart is a new member,
    and with the eager assignor every join revokes all partitions until the killed
    instances' sessions (6 s here) expire: measured on Apache Kafka 3.9, anything from 30
    to 600 of the 600 events were done during such a loop (in some runs the group never
    settled for the whole two minutes); librdkafka's mock cluster assigned nothing for
    130 s of a similar loop."""
    h = fleet
    prepare(h)
    h.stop_replicas()
    for k in range(2):
        h.replicas.append(h.new_replica(dict(FAST, HSQB_KAFKA__GROUP_INSTANCE_ID="crash-loop-%d" % k)).start())
    try:
        for r in h.replicas:
            r.wait_ready(60)
        t0 = time.monotonic()
        evs = stream(h, n=600)
        producer = produce_slowly(h, evs, 100)
        victim = h.replicas[0]
        kills = 0
        before = done_count(h, evs)
        loop_end = time.monotonic() + 120
        while time.monotonic() < loop_end:
            time.sleep(2)
            victim.kill()
            kills += 1
            victim = h.restart(victim, wait=False)
        during = done_count(h, evs) - before
        producer.join()
        victim.wait_ready(60)
        got, failed = check_stream(h, evs, timeout=240)
        assert not failed
        summary("crash loop x%d (%d done during the loop, %d re-published)" % (
            kills, during, republished(got)), got, failed, t0)
        # Progress, not speed: the crash-looping replica's own partitions wait for each
        # life, the other replica's never stop.
        assert during >= 0.1 * len(evs), "only %d of %d events completed during the loop" % (
            during, len(evs))
    finally:
        h.stop_replicas()
        h.start_replicas(2, extra_env=FAST)


# ---- a replica stalled past max.poll.interval.ms ----------------------------------------------

def test_replica_stalled_past_the_poll_interval_is_evicted_and_its_late_work_is_harmless(fleet):
    """SIGSTOP a replica while it holds claims on events whose QBO calls are slow: the group
    evicts it (session timeout and max.poll.interval.ms pass), the other replica takes its
    partitions and, once the claims' leases (and any creation lock it held) lapse, the
    events. SIGCONT once the others did half of them, after 15 s at the least: the stalled
    replica's late calls and outcomes must not create a second document."""
    h = fleet
    prepare(h)
    stalled = h.start_replicas(1, extra_env=dict(FAST, HSQB_KAFKA__MAX_POLL_INTERVAL_MS="7000"))[0]
    try:
        owners = h.partition_owners()
        mine = {p for p, r in owners.items() if r is stalled}
        assert mine, "the third replica got no partition of %s" % harness.TOPIC_ACTIONS
        t0 = time.monotonic()
        evs = stream(h, n=300)
        h.sandbox.add_fault(method="POST", path="/v3/company/*/*", vendor="qbo", delay_ms=2500,
                            probability=1.0)
        h.produce(*evs)
        harness.wait_until(lambda: gauge([stalled], "hsqb_in_flight") >= 3, 60, 0.05,
                           "the replica to be stalled holding events")
        held = gauge([stalled], "hsqb_in_flight")
        stalled.proc.send_signal(signal.SIGSTOP)
        h.sandbox.clear_faults()
        stopped = time.monotonic()
        # evicted: the group gives its partitions to the others, whose results for those
        # partitions' events arrive while it is still stopped. How soon depends on what it
        # held: its claims lapse after the 5-s lease, but a customer creation lock it took
        # lapses only after its 30-s TTL (resolve.h RESOLVE_LOCK_TTL_MS, never renewed),
        # and the events of that customer wait for it, retried through the retry topic
        # meanwhile (measured 6.8 s without such a lock, 30 s with one, under ASan).
        theirs = [e for e in evs if e.partition in mine]
        harness.wait_until(lambda: done_count(h, theirs) >= len(theirs) // 2, 60, 0.2,
                           "events of the stalled replica's partitions done by the others")
        time.sleep(max(0.0, 15 - (time.monotonic() - stopped)))
        stalled.proc.send_signal(signal.SIGCONT)
        got, failed = check_stream(h, evs, timeout=240)
        assert not failed
        # Results published twice: the events it held when it stopped (their late
        # outcomes and the new owner's), and what it had finished without committing.
        # Measured 0 to 115 of 300 (it held 3 to 77); not bounded here, only reported.
        summary("stalled replica holding %d (%d re-published)" % (held, republished(got)), got,
                failed, t0)
        assert stalled.alive(), "the stalled replica died after SIGCONT:\n" + stalled.tail()
    finally:
        if stalled.alive():
            stalled.proc.send_signal(signal.SIGCONT)
        h.stop_replicas([stalled])

