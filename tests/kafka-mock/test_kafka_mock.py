"""Black-box tests for kafka-mock ($BUILD/kafka-mock, default build/kafka-mock).

Every check goes through clients nobody here wrote: Debian's python3-kafka and kcat.
Run with Debian's interpreter (it has python3-kafka):

    /usr/bin/python3 -m pytest -q tests/kafka-mock

Each test starts its own mock on ephemeral 127.0.0.1 ports and every wait is bounded,
so the file finishes in well under a minute and never hangs.
"""

import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError, NotLeaderForPartitionError
from kafka.structs import TopicPartition

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("BUILD", "build"))
BIN = BUILD / "kafka-mock" if BUILD.is_absolute() else ROOT / BUILD / "kafka-mock"
DEFAULT_TOPICS = {
    "hsqb.actions": 6,
    "hsqb.actions.retry": 3,
    "hsqb.actions.dlq": 1,
    "hsqb.results": 6,
}
START_TIMEOUT = 10.0
KCAT = "kcat"


class Mock:
    """One running kafka-mock with its bootstrap file and control socket."""

    def __init__(self, tmp_path, *args, stdin_control=False):
        self.dir = tmp_path
        self.bootstrap_file = tmp_path / "bootstrap"
        self.socket_path = tmp_path / "ctl.sock"
        self.stderr = open(tmp_path / "mock.stderr", "wb")
        cmd = [str(BIN), "--bootstrap-file", str(self.bootstrap_file),
               "--control-socket", str(self.socket_path), *args]
        if stdin_control:
            cmd.append("--stdin-control")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if stdin_control else
                                     subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self.stderr, text=True, bufsize=1)
        deadline = time.monotonic() + START_TIMEOUT
        while not self.bootstrap_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"kafka-mock did not start: rc={self.proc.poll()} "
                                     f"stderr={self.stderr_text()}")
            time.sleep(0.02)
        self.bootstrap = self.bootstrap_file.read_text().strip()
        self.servers = self.bootstrap.split(",")
        self._ctl = None

    def stderr_text(self):
        if not self.stderr.closed:
            self.stderr.flush()
        return (self.dir / "mock.stderr").read_text(errors="replace")

    def ctl(self, line):
        """Sends one command on the control socket and returns the reply line."""
        if self._ctl is None:
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(5)
            s.connect(str(self.socket_path))
            self._ctl = s.makefile("rw")
        self._ctl.write(line + "\n")
        self._ctl.flush()
        return self._ctl.readline().rstrip("\n")

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise
        finally:
            if self._ctl is not None:
                self._ctl.close()
            self.stderr.close()
            self.proc.stdout.close()
            if self.proc.stdin:
                self.proc.stdin.close()
        return rc


@pytest.fixture
def start(tmp_path):
    started = []

    def _start(*args, stdin_control=False, subdir=None):
        d = tmp_path / (subdir or f"m{len(started)}")
        d.mkdir()
        m = Mock(d, *args, stdin_control=stdin_control)
        started.append(m)
        return m

    yield _start
    for m in started:
        if m.proc.poll() is None:
            assert m.stop() == 0
        # Under BUILD=build-asan a sanitizer report must fail the test that caused it.
        err = m.stderr_text()
        assert "Sanitizer" not in err and "runtime error:" not in err, err


def consumer(mock, **kw):
    kw.setdefault("request_timeout_ms", 5000)
    return KafkaConsumer(bootstrap_servers=mock.servers, **kw)


def offsets(mock, topic, partitions):
    c = consumer(mock)
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        return c.beginning_offsets(tps), c.end_offsets(tps)
    finally:
        c.close()


def read_all(mock, topic, partitions, want, timeout=10):
    """Reads from the beginning until `want` messages arrived or `timeout` passed."""
    c = consumer(mock, auto_offset_reset="earliest")
    got = []
    try:
        c.assign([TopicPartition(topic, p) for p in range(partitions)])
        deadline = time.monotonic() + timeout
        while len(got) < want and time.monotonic() < deadline:
            for ms in c.poll(timeout_ms=100).values():
                got.extend((m.partition, m.key, m.value) for m in ms)
        return got
    finally:
        c.close()


def run(cmd, input=None, timeout=15):
    return subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)


# ---- start-up, topics, usage ---------------------------------------------------------------


def test_announces_bootstrap_and_creates_default_topics(start):
    m = start("--brokers", "3")
    assert m.proc.stdout.readline().strip() == m.bootstrap
    assert len(m.servers) == 3 and all(s.startswith("127.0.0.1:") for s in m.servers)

    c = consumer(m)
    try:
        assert {t: len(c.partitions_for_topic(t)) for t in DEFAULT_TOPICS} == DEFAULT_TOPICS
    finally:
        c.close()
    meta = json.loads(run([KCAT, "-b", m.bootstrap, "-L", "-J", "-m", "5"]).stdout)
    assert sorted(b["id"] for b in meta["brokers"]) == [1, 2, 3]


def test_topic_flags_add_override_and_replace_defaults(start):
    m = start("--topic", "hsqb.actions:12", "--topic", "extra:2")
    c = consumer(m)
    try:
        assert len(c.partitions_for_topic("hsqb.actions")) == 12
        assert len(c.partitions_for_topic("extra")) == 2
        assert len(c.partitions_for_topic("hsqb.results")) == 6
    finally:
        c.close()

    m2 = start("--no-default-topics", "--topic", "only:3")
    assert m2.ctl("status").endswith(" topics=only:3")


@pytest.mark.parametrize("args", [["--brokers", "0"], ["--brokers", "x"], ["--topic", "t"],
                                  ["--topic", "t:0"], ["--topic", ":3"], ["--bogus"],
                                  ["--bootstrap-file"], ["-X", "no.equals"],
                                  ["-X", "no.such.property=1"]])
def test_bad_usage_fails_without_announcing(tmp_path, args):
    bf = tmp_path / "bootstrap"
    r = run([str(BIN), "--bootstrap-file", str(bf), *args], timeout=10)
    assert r.returncode in (1, 2), r
    assert r.stdout == "" and not bf.exists()
    assert "kafka-mock:" in r.stderr


def test_second_instance_refuses_live_socket_but_replaces_stale_one(start, tmp_path):
    m = start()
    r = run([str(BIN), "--control-socket", str(m.socket_path)], timeout=10)
    assert r.returncode == 1 and "in use" in r.stderr
    assert m.ctl("status").startswith("ok ")  # the first one is untouched

    stale = tmp_path / "stale.sock"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(stale))
    s.close()  # the file stays, nobody listens: what a crashed run leaves behind
    p = subprocess.Popen([str(BIN), "--control-socket", str(stale), "--stdin-control"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        out, _ = p.communicate("status\n", timeout=10)  # EOF on stdin then shuts it down
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0 and out.splitlines()[1].startswith("ok brokers=1")
    assert not stale.exists()


# ---- data path ---------------------------------------------------------------------------


def test_produce_and_consume_round_trip(start):
    m = start("--brokers", "3")
    p = KafkaProducer(bootstrap_servers=m.servers, linger_ms=5)
    futures = [(b"v%d" % i, p.send("hsqb.actions", key=b"deal-%d" % (i % 20), value=b"v%d" % i))
               for i in range(200)]
    p.flush(10)
    sent = {}
    for value, f in futures:
        sent.setdefault(f.get(0).partition, []).append(value)
    p.close(5)
    got = read_all(m, "hsqb.actions", 6, want=200)
    assert sorted(v for _, _, v in got) == sorted(v for vs in sent.values() for v in vs)
    # Per-partition order is kept and a key always lands on one partition.
    for part, values in sent.items():
        assert [v for p_, _, v in got if p_ == part] == values
    by_key = {}
    for part, key, _ in got:
        by_key.setdefault(key, set()).add(part)
    assert all(len(parts) == 1 for parts in by_key.values())
    assert len(sent) > 1  # keys spread over several partitions


def test_retention_drops_oldest_beyond_about_5mb_per_partition(start, tmp_path):
    m = start("--no-default-topics", "--topic", "ret:1")
    value = "x" * 100
    lines = tmp_path / "msgs"
    lines.write_text("".join(f"{i:08d}{value}\n" for i in range(80000)))  # ~8.6 MB
    # The mock drops whole batches, oldest first, while it holds over 5 MiB, so it keeps
    # between 5 MiB less one batch and 5 MiB. kcat's batches grow up to batch.size (1 MB by
    # default) the faster it reads compared with how fast it sends, so a load-dependent 1 MB
    # batch could leave as little as 3.9 MB of payload; 100 kB batches pin it near 4.7 MB.
    r = run([KCAT, "-b", m.bootstrap, "-P", "-t", "ret", "-p", "0", "-X", "batch.size=100000",
             "-l", str(lines)], timeout=30)
    assert r.returncode == 0, r.stderr
    begin, end = offsets(m, "ret", 1)
    tp = TopicPartition("ret", 0)
    assert end[tp] == 80000
    kept = end[tp] - begin[tp]
    assert begin[tp] > 0, "older messages should have been dropped"
    # Payload is ~92 % of the stored batches (record and batch headers are the rest).
    assert 4.5e6 < kept * 108 <= 5 * 1024 * 1024, kept


# ---- consumer groups across processes ---------------------------------------------------


def let_followers_sync_first(mock):
    """Makes the next group to form on a one-broker mock sync without a lost race.

    librdkafka 2.0.2's mock coordinator completes a sync as soon as the leader's SyncGroup
    (it carries every member's assignment) arrives. A follower whose SyncGroup comes after
    it is answered INVALID_REQUEST and rejoins, and the group re-forms only after another
    rebalance wait of session.timeout.ms - 1 s (44 s with librdkafka's defaults). Left
    alone, which of two processes syncs first is a scheduling race; the leader won it in
    about one run in three to ten here. The mock elects the first member to join, and that
    member's JoinGroup is the first one broker 1 sees, so answering it 1 s late gives every
    follower a 1 s head start: a follower now loses only if it stalls for a second between
    its JoinGroup response and its SyncGroup.
    """
    assert mock.ctl("delay 1 JoinGroup 1 1000") == "ok"


GROUP_MEMBER = r"""
import json, select, sys
from kafka import KafkaConsumer
from kafka.errors import InvalidRequestError
# request_timeout_ms also bounds JoinGroup, which the mock holds 3 s (+1 s for the leader).
c = KafkaConsumer("hsqb.actions", bootstrap_servers=sys.argv[1].split(","), group_id="pygrp",
                  auto_offset_reset="earliest", session_timeout_ms=3000,
                  heartbeat_interval_ms=300, request_timeout_ms=10000)
last = None
while not select.select([sys.stdin], [], [], 0)[0]:
    try:
        recs = c.poll(timeout_ms=100)
    except InvalidRequestError:
        # librdkafka 2.0.2's mock answers a follower's SyncGroup that arrives after the
        # leader's with INVALID_REQUEST; python-kafka raises it, polling again rejoins.
        # let_followers_sync_first() makes this rare; it stays the fallback.
        print(json.dumps({"err": "invalid_request"}), flush=True)
        continue
    now = sorted(tp.partition for tp in c.assignment())
    msgs = [m.value.decode() for ms in recs.values() for m in ms]
    if now != last or msgs:
        print(json.dumps({"assigned": now, "msgs": msgs}), flush=True)
        last = now
c.close()
"""


def watch(streams, deadline, on_line):
    """Feeds lines from several pipes to on_line(key, line) until it returns True.

    Reads raw bytes and splits lines here: a buffered readline() would strand lines in
    Python's buffer where select() can no longer see them.
    """
    sel = selectors.DefaultSelector()
    bufs = {}
    for key, f in streams.items():
        sel.register(f.fileno(), selectors.EVENT_READ, key)
        bufs[key] = b""
    try:
        while time.monotonic() < deadline and sel.get_map():
            for sk, _ in sel.select(timeout=max(0.0, deadline - time.monotonic())):
                chunk = os.read(sk.fd, 65536)
                if not chunk:
                    sel.unregister(sk.fd)
                    continue
                bufs[sk.data] += chunk
                *lines, bufs[sk.data] = bufs[sk.data].split(b"\n")
                for line in lines:
                    if on_line(sk.data, line.decode(errors="replace")):
                        return True
        return False
    finally:
        sel.close()


def split_ok(assigned):
    a, b = assigned.values()
    return a and b and not set(a) & set(b) and set(a) | set(b) == set(range(6))


def produce_lines(m, n):
    data = "".join(f"k{i}:v{i}\n" for i in range(n))
    r = run([KCAT, "-b", m.bootstrap, "-P", "-t", "hsqb.actions", "-K:"], input=data)
    assert r.returncode == 0, r.stderr
    return {f"v{i}" for i in range(n)}


def test_consumer_group_of_two_python_processes_splits_partitions(start):
    m = start()
    want = produce_lines(m, 60)
    let_followers_sync_first(m)
    procs = [subprocess.Popen(["/usr/bin/python3", "-c", GROUP_MEMBER, m.bootstrap],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    assigned, seen = {0: [], 1: []}, set()

    def on_line(i, line):
        ev = json.loads(line)
        if "assigned" in ev:
            assigned[i] = ev["assigned"]
            seen.update(ev["msgs"])
        return split_ok(assigned) and seen == want

    try:
        ok = watch({i: p.stdout for i, p in enumerate(procs)}, time.monotonic() + 25, on_line)
    finally:
        for p in procs:
            p.stdin.close()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            p.stdout.close()
    assert ok, (assigned, len(seen))


def test_consumer_group_of_two_kcat_processes_splits_partitions(start):
    m = start()
    want = produce_lines(m, 60)
    let_followers_sync_first(m)
    # Both kcats normally join within the mock's 3 s first-join window and form the group
    # in one rebalance. Should one be later, or anything else force a second rebalance,
    # the short session timeout makes the mock wait 5 s for it instead of 44 s.
    cmd = [KCAT, "-b", m.bootstrap, "-G", "kgrp", "-o", "beginning", "-u", "-f", "%p %s\n",
           "-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=500", "hsqb.actions"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    assigned, seen = {0: [], 1: []}, set()

    def on_line(key, line):
        i, stream = key
        if stream == "out":
            seen.add(line.split(" ", 1)[1])
        elif "rebalanced" in line and "assigned:" in line:
            assigned[i] = sorted(int(x.split("]")[0]) for x in line.split("[")[1:])
        elif "rebalanced" in line:
            assigned[i] = []
        return split_ok(assigned) and seen == want

    streams = {}
    for i, p in enumerate(procs):
        streams[(i, "out")] = p.stdout
        streams[(i, "err")] = p.stderr
    try:
        ok = watch(streams, time.monotonic() + 30, on_line)  # ~5 s when all goes well
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            p.stdout.close()
            p.stderr.close()
    assert ok, (assigned, len(seen))


# ---- fault injection ---------------------------------------------------------------------


def test_broker_down_stalls_its_partitions_and_up_recovers(start):
    m = start("--brokers", "3", "--topic", "t:2")
    assert m.ctl("leader t 0 2") == "ok"
    assert m.ctl("leader t 1 1") == "ok"
    p = KafkaProducer(bootstrap_servers=m.servers, retries=0, request_timeout_ms=1500,
                      max_block_ms=2000, reconnect_backoff_max_ms=200)
    try:
        p.send("t", b"a", partition=0).get(5)
        p.send("t", b"a", partition=1).get(5)

        assert m.ctl("broker down 2") == "ok"
        assert " down=2 " in m.ctl("status")
        with pytest.raises(KafkaTimeoutError):
            p.send("t", b"lost", partition=0).get(5)
        assert p.send("t", b"b", partition=1).get(5).offset == 1  # broker 1 still serves

        assert m.ctl("broker up 2") == "ok"
        assert " down=- " in m.ctl("status")
        deadline = time.monotonic() + 10
        while True:
            try:
                assert p.send("t", b"c", partition=0).get(2).offset == 1
                break
            except KafkaError:
                assert time.monotonic() < deadline, "partition 0 never recovered"
                time.sleep(0.1)
    finally:
        p.close(2)
    assert [v for _, _, v in read_all(m, "t", 1, want=2)] == [b"a", b"c"]


def test_injected_produce_errors_hit_exactly_count_requests(start):
    m = start("--topic", "t:1")
    p = KafkaProducer(bootstrap_servers=m.servers, retries=0)
    try:
        p.send("t", b"warm-up").get(5)
        assert m.ctl("errors Produce 3 NOT_LEADER_FOR_PARTITION") == "ok"
        for _ in range(3):
            with pytest.raises(NotLeaderForPartitionError):
                p.send("t", b"x").get(5)
        assert p.send("t", b"y").get(5).offset == 1

        # Another spelling of the same command: number + current Kafka name. A client that
        # retries (librdkafka, via kcat) rides through and counts exactly the injected ones.
        assert m.ctl("errors 0 2 NOT_LEADER_OR_FOLLOWER") == "ok"
        r = run([KCAT, "-b", m.bootstrap, "-P", "-t", "t", "-p", "0", "-d", "msg"],
                input="z\n")
        assert r.returncode == 0
        assert r.stderr.count("encountered error: Broker: Not leader for partition") == 2
        assert p.send("t", b"after").get(5).offset == 3

        assert m.ctl("errors Produce 5 -195") == "ok"  # _TRANSPORT: broker drops the client
        assert m.ctl("errors produce clear") == "ok"
        assert p.send("t", b"cleared").get(5).offset == 4
    finally:
        p.close(2)


def test_rtt_delays_every_response_and_delay_only_the_next_few(start):
    m = start("--topic", "t:1")
    p = KafkaProducer(bootstrap_servers=m.servers)

    def held(value):
        """Whether one send took the injected 500 ms. A send that was not held may be slow
        on a loaded machine, so the line between the two is just under the hold."""
        t0 = time.monotonic()
        p.send("t", value).get(5)
        return time.monotonic() - t0 >= 0.45

    try:
        held(b"warm-up")
        assert m.ctl("rtt all 500") == "ok"
        assert " rtt=1:500 " in m.ctl("status")
        assert held(b"slow")
        assert m.ctl("rtt 1 0") == "ok"
        held(b"drain")  # a request already delayed may still be in flight
        assert not held(b"fast")

        # `delay` holds the next <count> requests of one API only; the broker stays fast.
        assert m.ctl("delay 1 Produce 2 500") == "ok"
        assert [held(b"slow"), held(b"slow"), held(b"fast")] == [True, True, False]
        assert " rtt=1:0 " in m.ctl("status")
    finally:
        p.close(2)


# ---- control protocol --------------------------------------------------------------------


def test_stdin_control_protocol_replies_one_line_per_command(start):
    m = start("--brokers", "2", stdin_control=True)
    assert m.proc.stdout.readline().strip() == m.bootstrap
    script = [
        ("status", lambda r: r.startswith("ok brokers=2 bootstrap=" + m.bootstrap + " down=-")),
        ("", None),
        ("   # a comment gets no reply", None),
        ("help", lambda r: r.startswith("ok commands:")),
        ("topic create made 5", lambda r: r == "ok"),
        ("topic create made 5", lambda r: r.startswith("err TOPIC_ALREADY_EXISTS")),
        ("topic create bad 0", lambda r: r.startswith("err partitions")),
        ("broker down 3", lambda r: r.startswith("err broker must be 1..2")),
        ("broker sideways 1", lambda r: r == "err usage: broker down|up <id|all>"),
        ("broker down", lambda r: r == "err usage: broker down|up <id|all>"),
        ("frobnicate", lambda r: r == "err unknown command frobnicate (try help)"),
        ("rtt 1 -5", lambda r: r.startswith("err usage: rtt")),
        ("errors Bogus 1 NOT_LEADER_FOR_PARTITION", lambda r: r == "err unknown api Bogus"),
        ("errors Fetch 1 NO_SUCH_ERROR", lambda r: r == "err unknown error NO_SUCH_ERROR"),
        ("errors FetchRequest 0 UNKNOWN", lambda r: r.startswith("err count must be 1..")),
        ("errors Fetch 5", lambda r: r.startswith("err usage: errors <Api>")),
        ("errors JoinGroup 1 RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS", lambda r: r == "ok"),
        ("errors joingroup clear", lambda r: r == "ok"),
        ("delay all SyncGroup 2 100", lambda r: r == "ok"),
        ("delay 3 SyncGroup 1 100", lambda r: r.startswith("err broker must be 1..2")),
        ("delay 1 Bogus 1 100", lambda r: r == "err unknown api Bogus"),
        ("delay 1 SyncGroup 0 100", lambda r: r.startswith("err count must be 1..")),
        ("delay 1 SyncGroup 1 60001", lambda r: r == "err ms must be 0..60000"),
        ("delay 1 SyncGroup 1", lambda r: r.startswith("err usage: delay")),
        ("leader made 4 2", lambda r: r == "ok"),
        ("leader made 99 2", lambda r: r.startswith("err UNKNOWN_TOPIC_OR_PART")),
        ("coordinator group g1 2", lambda r: r == "ok"),
        ("coordinator transaction tx 1", lambda r: r == "ok"),
        ("coordinator weird g1 1", lambda r: r.startswith("err usage: coordinator")),
        ("x" * 5000, lambda r: r == "err line longer than 1023 bytes"),
        ("a b c d e f g h i", lambda r: r == "err too many words"),
        ("status", lambda r: r.endswith(",made:5")),
    ]
    for line, check in script:
        m.proc.stdin.write(line + "\n")
        m.proc.stdin.flush()
        if check:
            reply = m.proc.stdout.readline().rstrip("\n")
            assert check(reply), (line[:40], reply)
    c = consumer(m)
    try:
        assert len(c.partitions_for_topic("made")) == 5
    finally:
        c.close()
    m.proc.stdin.write("quit\n")
    m.proc.stdin.flush()
    assert m.proc.stdout.readline().strip() == "ok"
    assert m.proc.wait(10) == 0
    assert not m.bootstrap_file.exists() and not m.socket_path.exists()


def test_control_socket_serves_several_clients(start):
    m = start()
    socks = []
    for _ in range(3):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(5)
        s.connect(str(m.socket_path))
        socks.append(s)
    try:
        # Two commands in one write, one command split over two writes.
        socks[0].sendall(b"status\nrtt all 0\n")
        socks[1].sendall(b"sta")
        time.sleep(0.05)
        socks[1].sendall(b"tus\r\n")
        f0, f1 = socks[0].makefile("r"), socks[1].makefile("r")
        assert f0.readline().startswith("ok brokers=1")
        assert f0.readline() == "ok\n"
        assert f1.readline().startswith("ok brokers=1")
        socks[2].close()  # a client vanishing must not disturb the others
        socks[0].sendall(b"quit\n")
        assert f0.readline() == "ok\n"
    finally:
        for s in socks:
            s.close()
    assert m.proc.wait(10) == 0


def test_ctl_client_mode_for_shell_scripts(start, tmp_path):
    m = start()
    r = run([str(BIN), "--ctl", str(m.socket_path), "rtt", "all", "250"], timeout=10)
    assert (r.returncode, r.stdout) == (0, "ok\n")
    r = run([str(BIN), "--ctl", str(m.socket_path), "status"], timeout=10)
    assert r.returncode == 0 and " rtt=1:250 " in r.stdout
    r = run([str(BIN), "--ctl", str(m.socket_path), "broker", "down", "9"], timeout=10)
    assert r.returncode == 1 and r.stdout.startswith("err broker must be")
    r = run([str(BIN), "--ctl", str(tmp_path / "missing.sock"), "status"], timeout=10)
    assert r.returncode == 2 and r.stdout == ""
    r = run([str(BIN), "--ctl", str(m.socket_path), "quit"], timeout=10)
    assert r.returncode == 0 and m.proc.wait(10) == 0


# ---- shutdown ----------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_exits_zero_quickly_with_clients_connected(start, sig):
    m = start("--brokers", "3")
    c = consumer(m)
    c.assign([TopicPartition("hsqb.actions", 0)])
    c.poll(timeout_ms=100)  # a fetching client
    joiner = subprocess.Popen([KCAT, "-b", m.bootstrap, "-G", "g", "hsqb.actions"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)  # kcat now waits in JoinGroup, which the mock holds for 3 s
        m.ctl("status")  # and a control client stays connected
        t0 = time.monotonic()
        rc = m.stop(sig)
        assert rc == 0 and time.monotonic() - t0 < 3
        assert not m.bootstrap_file.exists() and not m.socket_path.exists()
    finally:
        joiner.kill()
        joiner.wait(5)
        c.close()


def test_stdin_eof_shuts_down_cleanly(start):
    m = start(stdin_control=True)
    m.proc.stdin.close()
    assert m.proc.wait(10) == 0
    assert not m.bootstrap_file.exists()


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
