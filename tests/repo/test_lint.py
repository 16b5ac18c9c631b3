"""The C sources stay clean under cppcheck, as `make lint` checks them (clang-tidy, its
slower half, is left to `make lint`): a finding fails the tier instead of waiting for
someone to run lint by hand. Two findings had crept in unnoticed before this test."""
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_cppcheck_finds_nothing():
    p = subprocess.run(["make", "--no-print-directory", "-s", "cppcheck"], cwd=ROOT,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-4000:]
