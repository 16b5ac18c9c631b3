"""The six workflow action definitions (deploy/hubspot/actions/*.json) are complete and
agree with the worker: every input is one the decoder reads for that action, with the
schema's required flags and allowed values; every error code of the result schema has a
readable message; every label exists in English and Finnish; dropdowns fed by the
ingress point at its optionsUrl; and the developer-platform project generated from the
bodies (deploy/hubspot/project/) has not drifted from them."""
import importlib.util
import json
import os
import re
import subprocess
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("BUILD", "build")
HUBSPOT = os.path.join(ROOT, "deploy", "hubspot")
ACTIONS_DIR = os.path.join(HUBSPOT, "actions")
OPTIONS_URL = "{{PUBLIC_URL}}/hubspot/options"
ACTIONS = ["create_invoice", "create_estimate", "create_sales_receipt", "create_paid_invoice",
           "create_expense", "create_refund_receipt"]
LOCALES = {"en", "fi"}
# What the callback completer (worker/callbacks.h) puts into outputFields.
OUTPUTS = ["qbo_document_id", "qbo_doc_number", "qbo_total", "qbo_document_url", "status",
           "error_code", "error_message"]


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


ACTION_SCHEMA = load(os.path.join(ROOT, "schemas", "action-event.schema.json"))
RESULT_SCHEMA = load(os.path.join(ROOT, "schemas", "result-event.schema.json"))
DEFS = ACTION_SCHEMA["$defs"]
ERROR_CODES = RESULT_SCHEMA["$defs"]["error_code"]["enum"]
BODIES = {a: load(os.path.join(ACTIONS_DIR, a + ".json")) for a in ACTIONS}


def resolve(node):
    while "$ref" in node:
        node = DEFS[node["$ref"].rsplit("/", 1)[1]]
    return node


def schema_inputs(action):
    """{input name: its schema} and the required names, as the decoder's contract says."""
    node = resolve(DEFS["inputs_" + action])
    return node["properties"], set(node.get("required", []))


def schema_object_types(action):
    node = DEFS["data_" + action]["allOf"][0]["properties"]["object"]["properties"]["objectType"]
    refs = [r["$ref"] for r in node.get("anyOf", [node])]
    return [DEFS[r.rsplit("/", 1)[1]]["enum"][0] for r in refs]


def allowed_values(spec):
    """The non-empty enum values of an input's schema, or None when it is free text."""
    values = resolve(spec).get("enum")
    return None if values is None else [v for v in values if v not in (None, "")]


def gen_project():
    spec = importlib.util.spec_from_file_location("gen_project",
                                                  os.path.join(HUBSPOT, "gen-project.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def inputs_of(body):
    return [f["typeDefinition"]["name"] for f in body["inputFields"]]


def field(body, name):
    return next(f for f in body["inputFields"] if f["typeDefinition"]["name"] == name)


# ---- the files ------------------------------------------------------------------------

def test_one_body_per_action_and_nothing_else():
    assert sorted(os.listdir(ACTIONS_DIR)) == sorted(a + ".json" for a in ACTIONS)


def test_project_has_not_drifted_from_the_bodies():
    bad = gen_project().drift()
    assert not bad, ("deploy/hubspot/project is stale, run deploy/hubspot/gen-project.py: "
                     + ", ".join(bad))


def test_project_carries_every_body_member():
    gp = gen_project()
    for action, body in BODIES.items():
        meta = gp.hsmeta(action, body)
        assert meta["type"] == "workflow-action" and meta["uid"] == "hsqb_" + action
        config = meta["config"]
        assert config["isPublished"] is body["published"]
        for key, value in body.items():
            if key != "published":
                assert config[key] == value, (action, key)


def test_generator_refuses_a_member_it_cannot_carry(tmp_path):
    gp = gen_project()
    for action, body in BODIES.items():
        (tmp_path / (action + ".json")).write_text(json.dumps(dict(body, functions=[])))
    with pytest.raises(ValueError, match="functions"):
        gp.project_files(str(tmp_path))


def test_generator_substitutes_the_public_url(tmp_path):
    out = tmp_path / "project"
    subprocess.run([os.path.join(HUBSPOT, "gen-project.py"), "--public-url",
                    "https://hsqb.example.com", "--out", str(out)], check=True, timeout=60)
    text = (out / "src/app/workflow-actions/create_invoice-hsmeta.json").read_text()
    assert "{{PUBLIC_URL}}" not in text
    meta = json.loads(text)["config"]
    assert meta["actionUrl"] == "https://hsqb.example.com/hubspot/actions/create_invoice"
    assert field(meta, "qbo_realm_id")["typeDefinition"]["optionsUrl"] == (
        "https://hsqb.example.com/hubspot/options")


# ---- each body ------------------------------------------------------------------------

@pytest.mark.parametrize("action", ACTIONS)
def test_required_members(action):
    body = BODIES[action]
    assert body["actionUrl"] == "{{PUBLIC_URL}}/hubspot/actions/" + action
    assert body["published"] is False
    assert body["objectTypes"] == schema_object_types(action)
    for f in body["inputFields"]:
        td = f["typeDefinition"]
        assert td["name"] and td["type"] and td["fieldType"], f
        assert f["supportedValueTypes"] == ["STATIC_VALUE"], td["name"]
        assert isinstance(f["isRequired"], bool), td["name"]
    for f in body["outputFields"]:
        assert f["typeDefinition"]["type"] and f["typeDefinition"]["fieldType"], f
    assert body["labels"]["en"]["actionName"]


@pytest.mark.parametrize("action", ACTIONS)
def test_inputs_are_the_decoders(action):
    body = BODIES[action]
    props, required = schema_inputs(action)
    names = inputs_of(body)
    assert len(names) == len(set(names)), "duplicate input"
    assert set(names) == set(props), "inputs differ from schemas/action-event.schema.json"
    for name in names:
        assert field(body, name)["isRequired"] == (name in required), name


@pytest.mark.parametrize("action", ACTIONS)
def test_option_fields(action):
    """Dropdowns: fixed values exactly the decoder's; QuickBooks records (company, terms,
    accounts, vendor) through the ingress's optionsUrl, each but the company depending on
    the company so HubSpot sends the chosen realm with the options request."""
    body = BODIES[action]
    props, _ = schema_inputs(action)
    remote = []
    for name in inputs_of(body):
        td = field(body, name)["typeDefinition"]
        values = allowed_values(props[name])
        if values is not None:
            assert td["type"] == "enumeration" and "optionsUrl" not in td, name
            assert sorted(o["value"] for o in td["options"]) == sorted(values), name
            assert [o["displayOrder"] for o in td["options"]] == list(range(len(values)))
        elif name == "customer_source":
            assert td["type"] == "string" and "options" not in td and "optionsUrl" not in td
        else:
            assert td["type"] == "enumeration" and td["fieldType"] == "select", name
            assert td.get("optionsUrl") == OPTIONS_URL, name
            assert "options" not in td, name
            remote.append(name)
    assert "qbo_realm_id" in remote
    deps = body["inputFieldDependencies"]
    assert deps == [{"dependencyType": "SINGLE_FIELD", "controllingFieldName": "qbo_realm_id",
                     "dependentFieldNames": [n for n in remote if n != "qbo_realm_id"]}]


@pytest.mark.parametrize("action", ACTIONS)
def test_outputs_and_execution_rules(action):
    body = BODIES[action]
    assert [f["typeDefinition"]["name"] for f in body["outputFields"]] == OUTPUTS
    code_field = next(f for f in body["outputFields"]
                      if f["typeDefinition"]["name"] == "error_code")["typeDefinition"]
    assert [o["value"] for o in code_field["options"]] == ERROR_CODES
    rules = body["executionRules"]
    by_code = {r["conditions"].get("error_code"): r for r in rules}
    missing = [c for c in ERROR_CODES if c not in by_code]
    assert not missing, "error codes without an execution rule: " + ", ".join(missing)
    names = [r["labelName"] for r in rules]
    assert len(names) == len(set(names))
    for r in rules:
        assert set(r["conditions"]) <= set(OUTPUTS), r
    # Specific rules first: HubSpot shows the first rule that matches.
    assert rules[-2:] == [{"labelName": "failed", "conditions": {"status": "failed"}},
                          {"labelName": "succeeded", "conditions": {"status": "succeeded"}}]
    for lang in LOCALES:
        messages = body["labels"][lang]["executionRules"]
        assert set(messages) == set(names), lang
        for text in messages.values():
            for var in re.findall(r"{{\s*(\w+)\s*}}", text):
                assert var in OUTPUTS, (lang, text)


def keys_of(node, path=""):
    if isinstance(node, dict):
        out = set()
        for k, v in node.items():
            out |= keys_of(v, path + "." + k)
        return out
    assert isinstance(node, str) and node.strip(), "empty label at " + path
    return {path}


@pytest.mark.parametrize("action", ACTIONS)
def test_labels_en_and_fi(action):
    body = BODIES[action]
    labels = body["labels"]
    assert set(labels) == LOCALES
    assert keys_of(labels["en"]) == keys_of(labels["fi"]), "en and fi label different things"
    names = inputs_of(body)
    for lang in LOCALES:
        L = labels[lang]
        for key in ("appDisplayName", "actionName", "actionDescription", "actionCardContent"):
            assert L[key], (lang, key)
        assert list(L["inputFieldLabels"]) == names, lang
        assert list(L["inputFieldDescriptions"]) == names, lang
        assert list(L["outputFieldLabels"]) == OUTPUTS, lang
        static = {n: field(body, n)["typeDefinition"]["options"] for n in names
                  if "options" in field(body, n)["typeDefinition"]}
        assert set(L["inputFieldOptionLabels"]) == set(static), lang
        for n, options in static.items():
            assert list(L["inputFieldOptionLabels"][n]) == [o["value"] for o in options]
    en, fi = labels["en"], labels["fi"]
    for key in ("actionName", "actionDescription", "actionCardContent"):
        assert en[key] != fi[key], key
    for group in ("inputFieldLabels", "inputFieldDescriptions", "executionRules"):
        for k in en[group]:
            assert en[group][k] != fi[group][k], (group, k)


def test_finnish_uses_the_accounting_terms():
    """The stale Finnish knowledge-base page garbles terms (reference hubspot-api.md 2);
    ours name each document by its accounting word."""
    words = {"create_invoice": "lasku", "create_estimate": "arvio",
             "create_sales_receipt": "myyntikuitti", "create_paid_invoice": "lasku",
             "create_expense": "kulu", "create_refund_receipt": "hyvityskuitti"}
    for action, word in words.items():
        assert word in BODIES[action]["labels"]["fi"]["actionName"].lower(), action
        text = json.dumps(BODIES[action]["labels"]["fi"], ensure_ascii=False).lower()
        for garbled in ("melkois", "sopimustietue", "kirjattu työnkulkuun"):
            assert garbled not in text, (action, garbled)


def test_shared_texts_agree_across_actions():
    """One wording per error code and field: a message fixed in one body is fixed in all."""
    for lang in LOCALES:
        seen = {}
        for action, body in BODIES.items():
            L = body["labels"][lang]
            for group in ("executionRules", "outputFieldLabels", "inputFieldOptionLabels"):
                for k, v in L[group].items():
                    if group == "executionRules" and k in ("failed", "succeeded"):
                        continue
                    prev = seen.setdefault((group, k), (action, v))
                    assert prev[1] == v, (lang, group, k, prev[0], action)


# ---- the decoder reads every input --------------------------------------------------

BAD_VALUE = {"in_realm": "12ab", "in_customer_source": "someone", "in_bool": "yes"}


def bad_value(spec):
    ref = spec.get("$ref", "").rsplit("/", 1)[-1]
    if ref in BAD_VALUE:
        return BAD_VALUE[ref]
    if allowed_values(spec) is not None:
        return "not-an-allowed-value"
    return "control\u0001character"


def good_inputs(action):
    props, required = schema_inputs(action)
    out = {}
    for name in required:
        values = allowed_values(props[name])
        out[name] = "9130347596296536" if name == "qbo_realm_id" else (
            values[0] if values else "Some Account")
    return out


def event(action, inputs):
    otype = schema_object_types(action)[0]
    cid = "ap-102670506-1-7-0"
    return {"specversion": "1.0", "id": cid, "type": "hsqb.action." + action,
            "source": "hubspot://portal/102670506/workflow/1",
            "data": {"callbackId": cid, "origin": {"portalId": 102670506},
                     "object": {"objectId": 904, "objectType": otype},
                     "inputFields": inputs}}


def test_the_decoder_reads_every_input_of_every_action():
    """Each definition input, given a value its rule refuses, makes the worker's decoder
    refuse the event naming that input; the same event with valid inputs passes. So no
    input is a name the worker would silently ignore."""
    worker = os.path.join(ROOT, BUILD, "hsqb-worker")
    cases = []
    with tempfile.TemporaryDirectory() as tmp:
        for action, body in BODIES.items():
            props, _ = schema_inputs(action)
            path = os.path.join(tmp, action + "-valid.json")
            with open(path, "w") as f:
                json.dump(event(action, good_inputs(action)), f)
            cases.append((path, action, None))
            for name in inputs_of(body):
                inputs = dict(good_inputs(action), **{name: bad_value(props[name])})
                path = os.path.join(tmp, "%s-%s.json" % (action, name))
                with open(path, "w") as f:
                    json.dump(event(action, inputs), f)
                cases.append((path, action, name))
        out = subprocess.run([worker, "validate", "--json"] + [c[0] for c in cases],
                             capture_output=True, text=True, timeout=60).stdout
    verdicts = {v["file"]: v for v in map(json.loads, out.splitlines())}
    for path, action, name in cases:
        v = verdicts[path]
        if name is None:
            assert v["valid"], (action, v)
        else:
            assert not v["valid"], (action, name, "accepted a bad value: not read?")
            assert v["error"].startswith("data.inputFields.%s:" % name), (action, name, v)
