#!/usr/bin/python3
"""gen-dicts.py - the libFuzzer dictionaries of `make fuzz`, from the sources of truth.

    gen-dicts.py           rewrite tests/fuzz/dicts/*.dict
    gen-dicts.py --check   exit 1 naming the dictionaries that drifted (the repo tier runs it)

event.dict    every key and enum value of schemas/action-event.schema.json (with its
              $defs), as JSON strings ("\"inputFields\"") so a mutation lands a whole token.
answers.dict  the keys of HubSpot and QBO answers: the sandbox's seed data
              (tests/sandbox/seed/*.json, what the worker's tests are answered with) and
              the `Key` / "key" tokens of the API references in /work/shared/reference
              when present, plus the JSON punctuation a parser must handle.
headers.dict  the Kafka header names the worker reads and writes (schemas/headers.md) and
              value shapes its readers special-case (digits at the int64 edge).
Standard library only; output sorted, so a regeneration is a clean diff.
"""
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fuzz", "dicts")
REFERENCE = "/work/shared/reference"


def quoted(s):
    """One dictionary entry: s as a JSON string token, escaped for libFuzzer's format."""
    tok = json.dumps(s, ensure_ascii=True)
    return '"' + tok.replace("\\", "\\\\").replace('"', '\\"') + '"'


def raw(s):
    """s as bytes: backslash and quote escaped, anything not printable ASCII as \\xNN."""
    out = []
    for b in s.encode("latin-1" if max(map(ord, s), default=0) < 256 else "utf-8"):
        c = chr(b)
        out.append("\\" + c if c in '\\"' else c if 32 <= b < 127 else "\\x%02x" % b)
    return '"' + "".join(out) + '"'


def walk_schema(node, keys, values):
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("properties", "patternProperties", "$defs"):
                if isinstance(v, dict):
                    keys.update(v if k == "properties" else ())
            if k in ("enum",) and isinstance(v, list):
                values.update(x for x in v if isinstance(x, str))
            if k == "const" and isinstance(v, str):
                values.add(v)
            if k == "required" and isinstance(v, list):
                keys.update(x for x in v if isinstance(x, str))
            walk_schema(v, keys, values)
    elif isinstance(node, list):
        for v in node:
            walk_schema(v, keys, values)


def walk_keys(node, keys):
    if isinstance(node, dict):
        for k, v in node.items():
            keys.add(k)
            walk_keys(v, keys)
    elif isinstance(node, list):
        for v in node:
            walk_keys(v, keys)


def event_dict():
    with open(os.path.join(ROOT, "schemas", "action-event.schema.json")) as f:
        schema = json.load(f)
    keys, values = set(), set()
    walk_schema(schema, keys, values)
    lines = ["# keys and enum values of schemas/action-event.schema.json (gen-dicts.py)"]
    lines += [quoted(k) for k in sorted(keys)]
    lines += [quoted(v) for v in sorted(values - keys)]
    lines += [raw(x) for x in ("hsqb.action.", "hubspot://portal/", "1.0", "true", "false",
                               "9999-12-31T23:59:59Z", "\\u0000", "\\ud800")]
    return lines


def answers_dict():
    """None when the API references are not on this machine (then --check skips it)."""
    keys = set()
    for name in ("hubspot.json", "qbo.json"):
        with open(os.path.join(ROOT, "tests", "sandbox", "seed", name)) as f:
            walk_keys(json.load(f), keys)
    ref = set()
    for name in ("hubspot-api.md", "quickbooks-api.md"):
        path = os.path.join(REFERENCE, name)
        if not os.path.exists(path):
            return None
        with open(path) as f:
            text = f.read()
        ref.update(m for m in re.findall(r'"([A-Za-z_][A-Za-z0-9_]{1,40})"\s*:', text))
    keys |= ref
    lines = ["# keys of HubSpot and QBO answers: sandbox seed + API references (gen-dicts.py)"]
    lines += [quoted(k) for k in sorted(keys)]
    lines += [raw(x) for x in ("{", "}", "[", "]", ":", ",", "null", "true", "false", "-0",
                               "1e309", "9223372036854775808", "0.0000001", "\\u0000",
                               "\\ud83d\\ude00", "\\\"")]
    return lines


HEADERS = ["content-type", "hsqb-attempts", "hsqb-not-before", "hsqb-last-error",
           "hsqb-first-failure", "hsqb-last-failure", "hsqb-original-topic",
           "hsqb-original-partition", "hsqb-original-offset", "hsqb-original-timestamp",
           "hsqb-error-code", "hsqb-error-message", "hsqb-consumer-group", "hsqb-event-id",
           "hsqb-replay-of", "hsqb-replay-count", "traceparent"]


def headers_dict():
    lines = ["# Kafka header names the worker reads and writes, and edge values (gen-dicts.py)"]
    lines += [raw(h + "=") for h in HEADERS]
    lines += [raw(x) for x in ("9223372036854775807", "9223372036854775808",
                               "9999999999999999999", "2147483647", "2147483648", "999999",
                               "1000000", "0", "00", "-1", "+1", " 1", "hsqb.actions",
                               "hsqb.actions.retry", "application/cloudevents+json",
                               "\x00", "\n", "\xff")]
    return lines


def main():
    check = "--check" in sys.argv[1:]
    drift = []
    for name, lines in (("event.dict", event_dict()), ("answers.dict", answers_dict()),
                        ("headers.dict", headers_dict())):
        if lines is None:
            print("gen-dicts.py: %s skipped: %s is not here" % (name, REFERENCE))
            continue
        text = "\n".join(lines) + "\n"
        path = os.path.join(OUT, name)
        old = open(path).read() if os.path.exists(path) else None
        if check:
            if old != text:
                drift.append(name)
        elif old != text:
            os.makedirs(OUT, exist_ok=True)
            with open(path, "w") as f:
                f.write(text)
    if drift:
        print("tests/fuzz/dicts stale, run tests/fuzz/gen-dicts.py: " + ", ".join(drift))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
