"""pytest fixtures for the end-to-end tests (run with /usr/bin/python3 -m pytest).

`hsqb` (session): the dev stack (tests/stack/stack up in a temp dir: redis-server,
kafka-mock, hsqb-sandbox), credentials stored with `hsqb-worker credentials`, and two
`hsqb-worker run` replicas in consumer group hsqb-e2e, ready (/readyz 200). Worker logs,
CLI output and the stack's logs are kept in $BUILD/test-logs/integration/.

Every test gets `hsqb` after a reset (autouse `fresh`): sandbox reset (seed, settings,
faults, request log) and the worker's Redis mapping caches dropped. Event ids are new in
every test, so nothing else needs resetting. A test that changes the replica set puts
the two standard replicas back before it ends; a replica that died is reported as a
failure of the test during which it died, and replaced.
"""
import os
import shutil
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402

REPLICAS = 2


@pytest.fixture(scope="session")
def hsqb():
    logdir = harness.build_dir() / "test-logs" / "integration"
    shutil.rmtree(logdir, ignore_errors=True)
    h = harness.Harness(logdir)
    h.start(replicas=REPLICAS)
    h.stop_statuses = {}
    yield h
    h.stop_statuses = h.stop()


@pytest.fixture(autouse=True)
def fresh(request, hsqb):
    hsqb.reset()
    yield hsqb
    hsqb.collect_secrets()
    dead = hsqb.check_replicas_alive()
    if dead:
        for r in [r for r in hsqb.replicas if not r.alive()]:
            hsqb.replicas.remove(r)
        missing = REPLICAS - len(hsqb.replicas)
        if missing > 0:
            hsqb.start_replicas(missing)
        pytest.fail("worker replica died during %s:\n%s" % (request.node.name,
                                                             "\n".join(dead)))


def pytest_configure(config):
    config.addinivalue_line("markers", "stack(**kwargs): Harness arguments of a test's own "
                            "stack (test_kafka_cluster.py)")
