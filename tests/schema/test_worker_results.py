"""Results the worker really builds validate against schemas/result-event.schema.json.

tests/unit/worker/test_result.c (unit tier) writes every result it builds, and
tests/unit/worker/test_pipeline.c (component tier) every result the pipeline published to
Kafka, to $BUILD/test-results/*.json; both tiers run before this one. Each file is validated here with Python's
jsonschema (Draft 2020-12), so the C builder and the schema are held to agreement by code
that shares nothing with the worker. BUILD defaults to "build".
"""
import json
import os
import pathlib

import pytest
from jsonschema import Draft202012Validator

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("BUILD", "build"))
if not BUILD.is_absolute():
    BUILD = ROOT / BUILD
RESULTS = BUILD / "test-results"
SCHEMA = json.loads((ROOT / "schemas" / "result-event.schema.json").read_text("utf-8"))
VALIDATOR = Draft202012Validator(SCHEMA)

FILES = sorted(RESULTS.glob("*.json")) if RESULTS.is_dir() else []


def test_results_were_written():
    assert FILES, ("no worker results in %s: run %s/tests/unit/worker/test_result first "
                   "(the unit tier does)" % (RESULTS, BUILD))


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_worker_result_matches_schema(path):
    raw = path.read_bytes()
    doc = json.loads(raw.decode("utf-8"))
    errors = sorted(VALIDATOR.iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "\n".join("%s: %s" % ("/".join(map(str, e.path)), e.message)
                                 for e in errors)
    # one line on the wire, as every Kafka value the worker writes
    assert b"\n" not in raw
