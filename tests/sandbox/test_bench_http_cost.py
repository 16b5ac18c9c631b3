"""build/http-cost (tests/bench/http_cost.c), the instrument behind the bench README's
"Where the worker's CPU goes": each mode runs against the sandbox and prints a per-request
figure, and bad arguments are refused with the usage, not a crash."""
import os
import pathlib
import re
import subprocess

import pytest

from conftest import ROOT


def http_cost():
    build = pathlib.Path(os.environ.get("BUILD", "build"))
    path = (build if build.is_absolute() else ROOT / build) / "http-cost"
    if not path.exists():
        pytest.fail("%s not built (make all)" % path)
    return str(path)


def run(*args):
    return subprocess.run([http_cost(), *map(str, args)], capture_output=True, text=True,
                          timeout=60)


FIGURE = r"([0-9.]+) us CPU and ([0-9.]+) voluntary switches per request"


@pytest.mark.parametrize("mode", ["http", "loop"])
def test_modes_measure_real_exchanges(sb, mode):
    p = run(mode, sb.port, 3, 4, 5)
    assert p.returncode == 0, p.stderr
    m = re.search(FIGURE, p.stdout)
    assert m and float(m.group(1)) > 0, p.stdout
    # every exchange reached the sandbox: 3 x 4 contact reads
    reads = [e for e in sb.requests() if e["path"].startswith("/crm/v3/objects/contacts/301")]
    assert len(reads) == 12, reads[:3]
    assert all(e["status"] == 200 for e in reads), reads


def test_latency_is_set_on_the_sandbox(sb):
    assert run("loop", sb.port, 1, 1, 7).returncode == 0
    cfg = sb.get("/_sandbox/config").json()
    assert cfg.get("latency_ms") == 7, cfg


def test_wait_mode_prints_a_figure():
    p = run("wait", 5, 0)
    assert p.returncode == 0, p.stderr
    assert re.search(r"[0-9.]+ us CPU per write \+ blocking read", p.stdout), p.stdout


@pytest.mark.parametrize("args", [[], ["loop", "1"], ["loop", "1", "0", "1"],
                                  ["http", "1", "0", "1"], ["loop", "1", "5000", "1"]])
def test_bad_arguments_are_refused(args):
    p = run(*args)
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert "http-cost" in p.stderr
