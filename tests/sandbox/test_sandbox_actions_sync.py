"""`hsqb-worker hubspot-actions sync` end to end against the sandbox's action definitions
API (/automation/v4/actions/{appId}, developer key in ?hapikey=): the six bodies of
deploy/hubspot/actions are accepted as HubSpot would accept them, a second run changes
nothing, a moved ingress or an edited body is a PATCH of what differs, --dry-run writes
nothing, other and duplicate definitions are left alone, every page is read, and a bad
key or an unreachable HubSpot fails without printing the key."""
import json
import os
import pathlib
import re
import shutil
import subprocess

import pytest

from conftest import ROOT

APP = "1234567"  # the seed's developer app (tests/sandbox/seed/hubspot.json)
DEV_KEY = "devkey-11111111-2222-4333-8444-555555555555"
PUBLIC = "https://hsqb.example.com"
ACTIONS = ["create_invoice", "create_estimate", "create_sales_receipt", "create_paid_invoice",
           "create_expense", "create_refund_receipt"]
BODIES = ROOT / "deploy" / "hubspot" / "actions"
API = "/automation/v4/actions/" + APP


def worker():
    build = pathlib.Path(os.environ.get("BUILD", "build"))
    return (build if build.is_absolute() else ROOT / build) / "hsqb-worker"


@pytest.fixture
def keyfile(tmp_path):
    path = tmp_path / "developer_key"
    path.write_text(DEV_KEY + "\n")
    return path


def sync(sb, keyfile, *args, public=PUBLIC, base=None):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "HSQB_HUBSPOT_DEVELOPER_KEY_FILE": str(keyfile)}
    cmd = [str(worker()), "hubspot-actions", "sync", "--app-id", APP,
           "--hubspot.base_url=" + (base or sb.base), "--http.allow_insecure=true",
           "--ingress.public_url=" + public, "--dir", str(BODIES)] + list(args)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env, cwd=ROOT)
    assert DEV_KEY not in r.stdout + r.stderr, "the developer key was printed"
    assert "hapikey" not in r.stdout + r.stderr
    return r


def api(sb, method, path="", body=None, key=DEV_KEY):
    sep = "&" if "?" in path else "?"
    return sb.call(method, API + path + sep + "hapikey=" + key, body=body)


def listed(sb):
    out, after = [], None
    while True:
        r = api(sb, "GET", "?limit=100" + ("&after=" + after if after else ""))
        assert r.status == 200, r
        page = r.json()
        out += page["results"]
        after = page.get("paging", {}).get("next", {}).get("after")
        if not after:
            return out


def ours(sb):
    """{action: definition} of the app, by the path of the actionUrl."""
    found = {}
    for d in listed(sb):
        m = re.fullmatch(r"https?://[^/]+/hubspot/actions/(\w+)", d["actionUrl"])
        if m:
            found.setdefault(m.group(1), d)  # the first listed, as sync keeps it
    return found


def writes(sb):
    return [r for r in sb.requests(path="/automation/v4/actions")
            if r["method"] in ("POST", "PATCH", "DELETE")]


def lines(r):
    return r.stdout.splitlines()


def test_first_run_creates_second_changes_nothing(sb, keyfile):
    r = sync(sb, keyfile)
    assert r.returncode == 0, r.stderr
    out = lines(r)
    for action, line in zip(ACTIONS, out):
        assert re.fullmatch(action + r": created id \d+", line), line
    assert out[-1] == "6 created, 0 updated, 0 up to date"
    defs = ours(sb)
    assert sorted(defs) == sorted(ACTIONS)
    for action, d in defs.items():
        assert d["actionUrl"] == PUBLIC + "/hubspot/actions/" + action
        assert d["published"] is False
        body = json.loads((BODIES / (action + ".json")).read_text())
        assert d["objectTypes"] == body["objectTypes"]
        assert [f["typeDefinition"]["name"] for f in d["inputFields"]] == [
            f["typeDefinition"]["name"] for f in body["inputFields"]]
        realm = d["inputFields"][0]["typeDefinition"]
        assert realm["optionsUrl"] == PUBLIC + "/hubspot/options"
        assert set(d["labels"]) == {"en", "fi"}
        assert len(d["executionRules"]) == len(body["executionRules"])
        assert "id %s" % d["id"] in r.stdout

    before = len(writes(sb))
    r = sync(sb, keyfile)
    assert r.returncode == 0, r.stderr
    for action, line in zip(ACTIONS, lines(r)):
        assert line == "%s: up to date (id %s)" % (action, ours(sb)[action]["id"])
    assert lines(r)[-1] == "0 created, 0 updated, 6 up to date"
    assert len(writes(sb)) == before, "an idempotent run wrote"


def test_dry_run_writes_nothing(sb, keyfile):
    r = sync(sb, keyfile, "--dry-run")
    assert r.returncode == 0, r.stderr
    assert lines(r) == ["%s: would be created" % a for a in ACTIONS] + [
        "dry run: 6 to create, 0 to update, 0 up to date; nothing written"]
    assert writes(sb) == [] and ours(sb) == {}


def test_moved_ingress_is_an_update_in_place(sb, keyfile):
    assert sync(sb, keyfile).returncode == 0
    ids = {a: d["id"] for a, d in ours(sb).items()}
    revisions = {a: d["revisionId"] for a, d in ours(sb).items()}
    moved = "https://hsqb2.example.com:8443"

    r = sync(sb, keyfile, "--dry-run", public=moved)
    assert r.returncode == 0, r.stderr
    assert "create_invoice: would be updated, id %s (actionUrl, inputFields)" % ids[
        "create_invoice"] in lines(r)
    assert ('    actionUrl: "%s/hubspot/actions/create_invoice" -> '
            '"%s/hubspot/actions/create_invoice"' % (PUBLIC, moved)) in lines(r)
    assert ('    inputFields[0].typeDefinition.optionsUrl: "%s/hubspot/options" -> '
            '"%s/hubspot/options"' % (PUBLIC, moved)) in lines(r)
    assert ours(sb)["create_invoice"]["actionUrl"].startswith(PUBLIC)

    r = sync(sb, keyfile, public=moved)
    assert r.returncode == 0, r.stderr
    for action in ACTIONS:
        assert "%s: updated id %s (actionUrl, inputFields)" % (action, ids[action]) in lines(r)
    now = ours(sb)
    assert {a: d["id"] for a, d in now.items()} == ids, "updated in place, none added"
    assert all(now[a]["revisionId"] != revisions[a] for a in ACTIONS)
    assert now["create_expense"]["actionUrl"] == moved + "/hubspot/actions/create_expense"
    patches = [w for w in writes(sb) if w["method"] == "PATCH"]
    assert len(patches) == 6
    assert all(set(json.loads(p["body"])) == {"actionUrl", "inputFields"} for p in patches)
    assert lines(sync(sb, keyfile, public=moved))[-1] == "0 created, 0 updated, 6 up to date"


def test_edited_body_patches_only_what_changed(sb, keyfile, tmp_path):
    assert sync(sb, keyfile).returncode == 0
    edited = tmp_path / "actions"
    shutil.copytree(BODIES, edited)
    body = json.loads((edited / "create_estimate.json").read_text())
    body["labels"]["fi"]["actionName"] = "Luo QuickBooks-hinta-arvio"
    (edited / "create_estimate.json").write_text(json.dumps(body, ensure_ascii=False))

    r = sync(sb, keyfile, "--dir", str(edited))
    assert r.returncode == 0, r.stderr
    est = ours(sb)["create_estimate"]
    assert "create_estimate: updated id %s (labels)" % est["id"] in lines(r)
    assert lines(r)[-1] == "0 created, 1 updated, 5 up to date"
    assert est["labels"]["fi"]["actionName"] == "Luo QuickBooks-hinta-arvio"
    assert est["labels"]["en"]["actionName"] == "Create a QuickBooks estimate"


def test_published_by_the_owner_stays_published(sb, keyfile):
    assert sync(sb, keyfile).returncode == 0
    inv = ours(sb)["create_invoice"]
    assert api(sb, "PATCH", "/" + inv["id"], {"published": True}).status == 200
    r = sync(sb, keyfile)
    assert lines(r)[-1] == "0 created, 0 updated, 6 up to date"
    assert ours(sb)["create_invoice"]["published"] is True


def test_recreates_an_archived_definition(sb, keyfile):
    assert sync(sb, keyfile).returncode == 0
    gone = ours(sb)["create_expense"]["id"]
    assert api(sb, "DELETE", "/" + gone).status == 204
    r = sync(sb, keyfile)
    assert r.returncode == 0, r.stderr
    assert re.search(r"^create_expense: created id (\d+)$", r.stdout, re.M)
    assert ours(sb)["create_expense"]["id"] != gone


def foreign(url, name="Someone else's action"):
    return {"actionUrl": url, "objectTypes": ["CONTACT"], "published": False,
            "inputFields": [], "labels": {"en": {"actionName": name}}}


def test_other_and_duplicate_definitions_are_left_alone(sb, keyfile):
    other = api(sb, "POST", body=foreign("https://elsewhere.example.com/webhook?x=1"))
    assert other.status == 201, other
    assert sync(sb, keyfile).returncode == 0
    dup = api(sb, "POST", body=foreign("https://old.example.com/hubspot/actions/create_invoice",
                                       "Stale copy"))
    assert dup.status == 201, dup
    kept = ours(sb)
    r = sync(sb, keyfile)
    assert r.returncode == 0, r.stderr
    assert "definition %s (/webhook): not one of ours, left alone" % other.json()["id"] in (
        lines(r))
    assert "both serve create_invoice" in r.stderr and dup.json()["id"] in r.stderr
    assert lines(r)[-1] == "0 created, 0 updated, 6 up to date"
    after = {d["id"]: d for d in listed(sb)}
    assert after[other.json()["id"]]["actionUrl"] == "https://elsewhere.example.com/webhook?x=1"
    assert after[dup.json()["id"]]["labels"]["en"]["actionName"] == "Stale copy"
    assert kept["create_invoice"]["id"] != dup.json()["id"]


def test_every_page_is_read(sb, keyfile):
    for i in range(101):  # more than one page of 100, ours on the last
        assert api(sb, "POST", body=foreign("https://x.example.com/other/%d" % i)).status == 201
    assert sync(sb, keyfile).returncode == 0
    r = sync(sb, keyfile)
    assert r.returncode == 0, r.stderr
    assert lines(r)[-1] == "0 created, 0 updated, 6 up to date"
    assert len(listed(sb)) == 107


def test_wrong_key_fails_cleanly(sb, keyfile, tmp_path):
    bad = tmp_path / "bad_key"
    bad.write_text("devkey-00000000-0000-4000-8000-000000000000")
    r = sync(sb, bad)
    assert r.returncode == 1
    assert "GET /automation/v4/actions/%s: HTTP 401" % APP in r.stderr
    assert "developer key" in r.stderr
    assert "devkey-00000000" not in r.stderr + r.stdout
    assert r.stdout == "" and ours(sb) == {}


def test_unreachable_hubspot_fails_cleanly(sb, keyfile):
    r = sync(sb, keyfile, base="http://127.0.0.1:1")
    assert r.returncode == 1
    assert "GET /automation/v4/actions/%s: " % APP in r.stderr and r.stdout == ""


def test_missing_key_file_is_a_configuration_error(sb, tmp_path):
    r = sync(sb, tmp_path / "absent")
    assert r.returncode == 2
    assert "hubspot.developer_key" in r.stderr
