"""Regenerate the generated parts of the docs from the binary: the configuration
reference in README.md and deploy/hsqb.conf.example. Run by `make docs`; the tests in
tests/repo/test_readme.py fail when these are stale."""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, os.environ.get("BUILD", "build"), "hsqb-worker")


def main():
    gen = subprocess.run([BIN, "config", "markdown"], capture_output=True, text=True,
                         check=True, timeout=30).stdout
    path = os.path.join(ROOT, "README.md")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    new = re.sub(r"(<!-- config-reference:begin[^>]*-->\n).*?(<!-- config-reference:end -->)",
                 lambda m: m.group(1) + gen.strip() + "\n" + m.group(2), text, flags=re.S)
    if new != text:
        with open(path, "w", encoding="utf-8") as f:
            f.write(new)
        print("docs: README.md configuration reference updated")
    example = subprocess.run([os.path.join(ROOT, "deploy", "gen-example-config.sh"), BIN],
                             capture_output=True, text=True, check=True, timeout=60).stdout
    path = os.path.join(ROOT, "deploy", "hsqb.conf.example")
    with open(path, encoding="utf-8") as f:
        old = f.read()
    if old != example:
        with open(path, "w", encoding="utf-8") as f:
            f.write(example)
        print("docs: deploy/hsqb.conf.example updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
