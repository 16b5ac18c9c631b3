"""Schema examples: the JSON Schema validator and the worker's decoder must agree.

Every file under schemas/examples/valid/ must be accepted, and every file under
schemas/examples/invalid/ rejected, by BOTH
  * the reference side: Python's jsonschema (Draft 2020-12) on the schema, plus the
    rules JSON Schema cannot express (schemas/README.md, "Rules outside the schema"):
    strict UTF-8, no duplicated keys (compared after unescaping), no NaN/Infinity, no
    unpaired surrogate escapes, no U+0000 in keys, size <= 1 MiB, depth <= 64,
    data.callbackId == id, a `time` instant within years 0001..9999 UTC;
  * the worker: `$BUILD/hsqb-worker validate --json FILE` (BUILD defaults to build).

No FormatChecker: the schemas use no `format` keyword on purpose (Debian's jsonschema
ships no date-time checker, so `format` would be checked by some installations and not
others); every syntactic rule is a pattern both sides implement.
"""
import json
import os
import pathlib
import re
import subprocess
import sys

import pytest
from jsonschema import Draft202012Validator

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "schemas"
EXAMPLES = SCHEMAS / "examples"
BUILD = pathlib.Path(os.environ.get("BUILD", "build"))
if not BUILD.is_absolute():
    BUILD = ROOT / BUILD
WORKER = BUILD / "hsqb-worker"

EVENT_MAX_BYTES = 1024 * 1024  # worker/event.h EVENT_MAX_BYTES
EVENT_MAX_DEPTH = 64           # worker/event.h EVENT_MAX_DEPTH
ACTIONS = ["create_invoice", "create_estimate", "create_sales_receipt",
           "create_paid_invoice", "create_expense", "create_refund_receipt"]


def load_schema(name):
    with open(SCHEMAS / name, encoding="utf-8") as f:
        return json.load(f)


ACTION_SCHEMA = load_schema("action-event.schema.json")
RESULT_SCHEMA = load_schema("result-event.schema.json")


class Reject(Exception):
    pass


def _no_dups(pairs):
    obj = {}
    for k, v in pairs:
        if k in obj:
            raise Reject("duplicated key %r" % k)
        obj[k] = v
    return obj


def _no_constants(name):
    raise Reject("%s is not JSON" % name)


def _check_text(v):
    """What RFC 8259 text cannot hold but Python's json builds anyway: unpaired surrogate
    escapes (in keys or strings), and U+0000 in keys (the decoder refuses both)."""
    if isinstance(v, dict):
        for k, x in v.items():
            if "\x00" in k:
                raise Reject("U+0000 in a key")
            _check_text(k)
            _check_text(x)
    elif isinstance(v, list):
        for x in v:
            _check_text(x)
    elif isinstance(v, str):
        try:
            v.encode("utf-8")
        except UnicodeEncodeError:
            raise Reject("unpaired surrogate escape")


def _depth(v):
    """Nesting depth as the decoder counts it: a scalar is 0, [] / {} is 1."""
    if isinstance(v, dict):
        return 1 + max((_depth(x) for x in v.values()), default=0)
    if isinstance(v, list):
        return 1 + max((_depth(x) for x in v), default=0)
    return 0


def parse_strict(raw):
    """Parse bytes the way the worker's strict parser does, or raise Reject."""
    if hasattr(sys, "set_int_max_str_digits"):
        sys.set_int_max_str_digits(0)  # huge integer literals are JSON, just out of range
    if len(raw) > EVENT_MAX_BYTES:
        raise Reject("larger than %d bytes" % EVENT_MAX_BYTES)
    try:
        text = raw.decode("utf-8", errors="strict")
    except UnicodeDecodeError as e:
        raise Reject("invalid UTF-8: %s" % e)
    try:
        value = json.loads(text, object_pairs_hook=_no_dups, parse_constant=_no_constants)
    except ValueError as e:  # JSONDecodeError is a ValueError
        raise Reject("not JSON: %s" % e)
    _check_text(value)
    if _depth(value) > EVENT_MAX_DEPTH:
        raise Reject("nested deeper than %d" % EVENT_MAX_DEPTH)
    return value


def reference_verdict(raw, schema=ACTION_SCHEMA, cross_field=True):
    """(valid, reason) from the schema plus the rules outside it."""
    try:
        value = parse_strict(raw)
    except Reject as e:
        return False, str(e)
    errors = sorted(Draft202012Validator(schema).iter_errors(value), key=lambda e: list(e.path))
    if errors:
        e = errors[0]
        return False, "%s: %s" % ("/".join(map(str, e.absolute_path)) or "(top)", e.message[:200])
    if cross_field and value["data"]["callbackId"] != value["id"]:
        return False, "data.callbackId differs from id"
    if isinstance(value.get("time"), str) and not time_in_range(value["time"]):
        return False, "time: the instant lies outside years 0001..9999 UTC"
    return True, ""


def time_in_range(t):
    """Rule 5 outside the schema, for a `time` the pattern accepted: the instant, offset
    applied and a leap second read as the second after :59, lies within
    0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999Z. The calendar is not checked (Feb 30
    rolls over into March), so the day is added to the month's first day."""
    import datetime
    y, mo, d = int(t[0:4]), int(t[5:7]), int(t[8:10])
    if y < 1:
        return False
    secs = ((d - 1) * 24 + int(t[11:13])) * 3600 + int(t[14:16]) * 60 + int(t[17:19])
    tail = t[19:].lstrip(".0123456789")
    if tail[0] in "+-":
        off = int(tail[1:3]) * 3600 + int(tail[4:6]) * 60
        secs -= off if tail[0] == "+" else -off
    first = datetime.datetime(y, mo, 1, tzinfo=datetime.timezone.utc)
    try:
        instant = first + datetime.timedelta(seconds=secs)
    except OverflowError:
        return False
    return instant.year <= 9999


def decoder_verdict(path):
    """(valid, line) from `hsqb-worker validate --json FILE`."""
    p = subprocess.run([str(WORKER), "validate", "--json", str(path)],
                       capture_output=True, timeout=30)
    assert p.returncode in (0, 1), "exit %d: %s" % (p.returncode, p.stderr.decode(errors="replace"))
    lines = p.stdout.decode("utf-8").splitlines()
    assert len(lines) == 1, lines
    out = json.loads(lines[0])
    assert out["file"] == str(path)
    assert out["valid"] is (p.returncode == 0)
    return out["valid"], out


def files(*parts):
    d = EXAMPLES.joinpath(*parts)
    return sorted(p for p in d.iterdir() if p.is_file())


VALID = files("valid")
INVALID = files("invalid")


# ---- the schemas themselves -------------------------------------------------------------

@pytest.mark.parametrize("name", ["action-event.schema.json", "result-event.schema.json"])
def test_schema_is_valid_2020_12(name):
    schema = load_schema(name)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("name", ["action-event.schema.json", "result-event.schema.json"])
def test_schema_patterns_avoid_engine_differences(name):
    """Patterns must mean the same in ECMA-262 and Python re: no \\d \\w \\s (Unicode in
    Python), no '.' (line terminators differ), and every '$' guarded against a final
    newline (Python's '$' matches before one)."""
    text = (SCHEMAS / name).read_text(encoding="utf-8")
    for pat in re.findall(r'"pattern":\s*"((?:[^"\\]|\\.)*)"', text):
        pat = json.loads('"%s"' % pat)
        re.compile(pat)
        assert not re.search(r"\\[dDwWsS]", pat), pat
        assert "." not in pat.replace("\\.", ""), pat


def test_example_counts_and_coverage():
    assert len(VALID) >= 18 and len(INVALID) >= 18
    seen = set()
    for p in VALID:
        seen.add(json.loads(p.read_bytes())["type"].rsplit(".", 1)[1])
    assert seen == set(ACTIONS)


# ---- action events: both sides agree with the directory --------------------------------

@pytest.mark.parametrize("path", VALID, ids=[p.name for p in VALID])
def test_valid_example(path):
    ok, why = reference_verdict(path.read_bytes())
    assert ok, "schema rejects %s: %s" % (path.name, why)
    dok, out = decoder_verdict(path)
    assert dok, "decoder rejects %s: %s" % (path.name, out.get("error"))
    value = json.loads(path.read_bytes())
    assert out["action"] == value["type"].rsplit(".", 1)[1]
    assert out["id"] == value["id"]
    # The key is canonical whatever spelling the event used.
    assert re.fullmatch(r"[1-9][0-9]*:(DEAL|QUOTE|COMMERCE_PAYMENT):[1-9][0-9]*", out["key"])
    portal = int(value["data"]["origin"]["portalId"])
    obj = int(value["data"]["object"]["objectId"])  # int, integral float or digit string
    assert out["key"].startswith("%d:" % portal) and out["key"].endswith(":%d" % obj)


@pytest.mark.parametrize("path", INVALID, ids=[p.name for p in INVALID])
def test_invalid_example(path):
    ok, _ = reference_verdict(path.read_bytes())
    assert not ok, "schema accepts %s" % path.name
    dok, out = decoder_verdict(path)
    assert not dok, "decoder accepts %s" % path.name
    assert out["error"], out


def _big_event(tmp_path, pad):
    value = json.loads((EXAMPLES / "valid" / "create_invoice_quote_minimal.json").read_bytes())
    value["padding"] = ""
    base = len(json.dumps(value).encode())
    value["padding"] = "x" * (pad - base)
    raw = json.dumps(value).encode()
    assert len(raw) == pad
    path = tmp_path / ("size_%d.json" % pad)
    path.write_bytes(raw)
    return path, raw


@pytest.mark.parametrize("size,valid", [(EVENT_MAX_BYTES, True), (EVENT_MAX_BYTES + 1, False)])
def test_size_cap_both_sides(tmp_path, size, valid):
    path, raw = _big_event(tmp_path, size)
    assert reference_verdict(raw)[0] is valid
    assert decoder_verdict(path)[0] is valid


@pytest.mark.parametrize("depth,valid", [(EVENT_MAX_DEPTH, True), (EVENT_MAX_DEPTH + 1, False)])
def test_depth_cap_both_sides(tmp_path, depth, valid):
    value = json.loads((EXAMPLES / "valid" / "create_invoice_quote_minimal.json").read_bytes())
    value["deep"] = "HOLE"
    raw = json.dumps(value).encode()
    nest = depth - 1  # the event object itself is one level
    raw = raw.replace(b'"HOLE"', b"[" * nest + b"]" * nest)
    path = tmp_path / "deep.json"
    path.write_bytes(raw)
    assert reference_verdict(raw)[0] is valid
    assert decoder_verdict(path)[0] is valid


def test_validate_exit_status_and_plain_output(tmp_path):
    good, bad = VALID[0], INVALID[0]
    p = subprocess.run([str(WORKER), "validate", str(good)], capture_output=True, timeout=30)
    assert p.returncode == 0
    assert re.fullmatch(r"%s: valid create_\w+ key=\S+\n" % re.escape(str(good)), p.stdout.decode())
    p = subprocess.run([str(WORKER), "validate", str(good), str(bad)], capture_output=True, timeout=30)
    assert p.returncode == 1
    assert p.stdout.decode().splitlines()[1].startswith("%s: invalid: " % bad)
    p = subprocess.run([str(WORKER), "validate", "--quiet", str(good), str(bad)],
                       capture_output=True, timeout=30)
    assert p.returncode == 1 and len(p.stdout.decode().splitlines()) == 1
    p = subprocess.run([str(WORKER), "validate", str(tmp_path / "missing.json")],
                       capture_output=True, timeout=30)
    assert p.returncode == 2
    p = subprocess.run([str(WORKER), "validate"], capture_output=True, timeout=30)
    assert p.returncode == 2


# ---- result events -----------------------------------------------------------------------

RVALID = files("results", "valid")
RINVALID = files("results", "invalid")


def test_result_example_counts():
    assert len(RVALID) >= 4 and len(RINVALID) >= 4


@pytest.mark.parametrize("path", RVALID, ids=[p.name for p in RVALID])
def test_valid_result(path):
    ok, why = reference_verdict(path.read_bytes(), RESULT_SCHEMA, cross_field=False)
    assert ok, why


@pytest.mark.parametrize("path", RINVALID, ids=[p.name for p in RINVALID])
def test_invalid_result(path):
    ok, _ = reference_verdict(path.read_bytes(), RESULT_SCHEMA, cross_field=False)
    assert not ok


def test_error_code_table_matches_schema():
    """schemas/README.md documents exactly the codes the result schema allows."""
    readme = (SCHEMAS / "README.md").read_text(encoding="utf-8")
    table = re.findall(r"^\| `([A-Z_]+)` \|[^|]*\| (yes|no) \|", readme, re.M)
    codes = RESULT_SCHEMA["$defs"]["error_code"]["enum"]
    assert [c for c, _ in table] == codes


# ---- differential: structured mutations of the valid examples ----------------------------

MUTATION_SEED = 20240501
MUTATIONS = 3000
POOL = [None, True, False, 0, 1, -1, 904, 904.0, 904.5, 9.04e2, 1e400, 2**63 - 1, 2**63, 2**64,
        "", " ", "904", "0904", "-904", "9223372036854775807", "9223372036854775808",
        "1.0", "true", "false", "yes", "Net 30", "Net 30\n", "a\tb", "\u00e9" * 501, "\u00e9" * 500,
        "DEAL", "QUOTE", "COMMERCE_PAYMENT", "0-3", "0-14", "0-101", "deals", "quotes",
        "commerce_payments", "CONTACT", "deal", "first_associated_contact", "contact:1",
        "contact:0", "contact:9223372036854775808", "Cash", "Check", "CreditCard", "fees",
        "net", "total", "gross", "2024-05-01T10:20:30Z", "2024-05-01T10:20:30z",
        "2024-13-01T00:00:00Z", "2024-05-01T10:20:30+02:00", "2024-05-01T10:20:30.1234567890Z",
        "application/json", "text/plain", "1.0", "0.3", "x" * 201, "ap-1 2", "ap-1\n",
        "hsqb.action.create_invoice", "hsqb.action.create_expense", "hsqb.action.create_bill",
        "hsqb.action.create_refund_receipt", "hsqb.action.create_paid_invoice",
        "hsqb.action.create_sales_receipt", "hsqb.action.create_estimate",
        "9130347596296536", "12a", "1" * 33, {}, [], {"qbo_realm_id": "1"}, [1, {"a": None}]]
KNOWN_KEYS = ["specversion", "id", "type", "source", "time", "datacontenttype", "data",
              "callbackId", "origin", "portalId", "context", "workflowId", "object", "objectId",
              "objectType", "inputFields", "fields", "qbo_realm_id", "payment_terms",
              "customer_source", "create_missing_products", "deposit_to_account",
              "expense_account", "paid_from_account", "payment_type", "vendor",
              "amount_source", "refund_from_account", "income_account", "email_document", "unknown"]


def _containers(v, out):
    if isinstance(v, dict):
        out.append(v)
        for x in v.values():
            _containers(x, out)
    elif isinstance(v, list):
        for x in v:
            _containers(x, out)
    return out


def _mutate(rng, value):
    import copy
    value = copy.deepcopy(value)
    for _ in range(rng.randint(1, 3)):
        objs = _containers(value, [])
        obj = rng.choice(objs)
        op = rng.random()
        if op < 0.15 and obj:
            del obj[rng.choice(list(obj))]
        elif op < 0.55 and obj:
            obj[rng.choice(list(obj))] = copy.deepcopy(rng.choice(POOL))
        else:
            obj[rng.choice(KNOWN_KEYS)] = copy.deepcopy(rng.choice(POOL))
    if rng.random() < 0.5 and isinstance(value.get("data"), dict):
        value["data"]["callbackId"] = value.get("id")  # keep the cross-field rule mostly met
    return value


def test_structured_mutations_agree(tmp_path):
    """Thousands of near-valid events: the schema and the decoder give the same verdict."""
    import random
    rng = random.Random(MUTATION_SEED)
    seeds = [json.loads(p.read_bytes()) for p in VALID]
    paths, verdicts = [], []
    for i in range(MUTATIONS):
        raw = json.dumps(_mutate(rng, rng.choice(seeds))).encode()
        path = tmp_path / ("m%05d.json" % i)
        path.write_bytes(raw)
        paths.append(path)
        verdicts.append(reference_verdict(raw))
    assert 0.1 < sum(ok for ok, _ in verdicts) / MUTATIONS < 0.9  # both kinds exercised
    lines = []
    for i in range(0, len(paths), 500):
        p = subprocess.run([str(WORKER), "validate", "--json"] + [str(x) for x in paths[i:i + 500]],
                           capture_output=True, timeout=60)
        lines += p.stdout.decode().splitlines()
    assert len(lines) == len(paths)
    bad = []
    for path, (ok, why), line in zip(paths, verdicts, lines):
        out = json.loads(line)
        if out["valid"] != ok:
            bad.append("%s: schema %s (%s), decoder %s (%s)\n  %s" % (
                path.name, ok, why[:120], out["valid"], out.get("error"), path.read_text()[:600]))
    assert not bad, "%d disagreements, first:\n%s" % (len(bad), "\n".join(bad[:3]))
