"""pytest fixtures for hsqb-sandbox tests (stdlib only; run with /usr/bin/python3 -m pytest).

`sandbox` (session): one $BUILD/hsqb-sandbox process (BUILD defaults to "build") on an
ephemeral 127.0.0.1 port, seeded from tests/sandbox/seed/. `sb` (per test): the same
process after POST /_sandbox/reset, so every test starts from the seed and the startup
settings with an empty request log and no fault rules.
"""
import http.client
import json
import os
import pathlib
import signal
import subprocess
import tempfile
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SEED_DIR = ROOT / "tests" / "sandbox" / "seed"
TIMEOUT_S = 10  # any single request; keeps every test bounded

# Tokens and ids from tests/sandbox/seed/hubspot.json.
PORTAL1 = "102670506"
PORTAL2 = "243987001"
TOKEN1 = "pat-na1-11111111-1111-4111-8111-111111111111"
TOKEN2 = "pat-na1-22222222-2222-4222-8222-222222222222"
TOKEN_CONTACTS_ONLY = "pat-na1-contacts-only-0000-000000000000"
TOKEN_EXPIRED = "pat-na1-expired-0000-0000-000000000000"


def sandbox_binary():
    build = os.environ.get("BUILD", "build")
    path = pathlib.Path(build)
    if not path.is_absolute():
        path = ROOT / path
    return path / "hsqb-sandbox"


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # http.client.HTTPMessage: case-insensitive .get()
        self.body = body

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "<Response %d %r>" % (self.status, self.body[:200])


class Sandbox:
    """A running hsqb-sandbox process and a tiny HTTP client for it."""

    def __init__(self, args=(), seed=True):
        binary = sandbox_binary()
        if not binary.exists():
            pytest.fail("%s not built (make build/hsqb-sandbox)" % binary)
        self.tmp = tempfile.TemporaryDirectory(prefix="hsqb-sandbox-")
        port_file = os.path.join(self.tmp.name, "port")
        cmd = [str(binary), "--listen", "127.0.0.1:0", "--port-file", port_file]
        if seed:
            cmd += ["--seed", str(SEED_DIR)]
        cmd += list(args)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + TIMEOUT_S
        while not os.path.exists(port_file):
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace")
                pytest.fail("hsqb-sandbox exited %d: %s" % (self.proc.returncode, err))
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail("hsqb-sandbox did not write its port file")
            time.sleep(0.01)
        with open(port_file) as f:
            self.port = int(f.read().strip())
        self.stdout_line = self.proc.stdout.readline().decode().strip()
        self.base = "http://127.0.0.1:%d" % self.port

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream:
                stream.close()
        self.tmp.cleanup()
        return self.proc.returncode

    def call(self, method, path, body=None, headers=None, token=None, timeout=TIMEOUT_S):
        hdrs = dict(headers or {})
        if token:
            hdrs["Authorization"] = "Bearer " + token
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            hdrs.setdefault("Content-Type", "application/json")
        if isinstance(body, str):
            body = body.encode("utf-8")
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=hdrs)
            r = conn.getresponse()
            return Response(r.status, r.headers, r.read())
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.call("POST", path, body=body, **kw)

    def hs(self, method, path, body=None, token=TOKEN1, **kw):
        """A HubSpot call with portal 1's private-app token by default."""
        return self.call(method, path, body=body, token=token, **kw)

    # admin helpers
    def reset(self, seed=True):
        r = self.post("/_sandbox/reset" + ("" if seed else "?seed=0"))
        assert r.status == 200, r
        return r

    def config(self, **settings):
        r = self.post("/_sandbox/config", settings)
        assert r.status == 200, r
        return r.json()

    def fault(self, **rule):
        r = self.post("/_sandbox/faults", rule)
        assert r.status == 201, r
        return r.json()

    def requests(self, **filters):
        q = "&".join("%s=%s" % kv for kv in filters.items())
        r = self.get("/_sandbox/requests" + ("?" + q if q else ""))
        assert r.status == 200, r
        return r.json()["requests"]

    def state(self, **filters):
        q = "&".join("%s=%s" % kv for kv in filters.items())
        r = self.get("/_sandbox/state" + ("?" + q if q else ""))
        assert r.status == 200, r
        return r.json()


@pytest.fixture(scope="session")
def sandbox():
    s = Sandbox()
    yield s
    rc = s.stop()
    assert rc == 0, "hsqb-sandbox exited %s on SIGTERM" % rc


@pytest.fixture
def sb(sandbox):
    sandbox.reset()
    return sandbox
