#!/usr/bin/python3
"""gen-project.py - the HubSpot developer-platform project from the action definitions.

The six API bodies in deploy/hubspot/actions/ (what `hsqb-worker hubspot-actions sync`
sends to POST /automation/v4/actions/{appId}) are the one source of truth. This script
writes the same definitions as a developer-platform project (hsproject.json,
src/app/app-hsmeta.json, src/app/workflow-actions/<action>-hsmeta.json), for teams that
ship the app with `hs project upload` instead of the definitions API.

    gen-project.py                      rewrite deploy/hubspot/project/ (placeholders kept)
    gen-project.py --check              exit 1 and name the files that drifted
    gen-project.py --public-url URL --out DIR
                                        a project to upload, {{PUBLIC_URL}} replaced

The committed project keeps the {{PUBLIC_URL}} placeholder, like the bodies: HubSpot
needs the real https URL of `hsqb-worker ingress`, which only the deployment knows.
A body member this script does not know how to carry fails the run, so the two forms can
never silently differ. Standard library only.
"""
import argparse
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ACTIONS_DIR = os.path.join(HERE, "actions")
PROJECT_DIR = os.path.join(HERE, "project")
PLACEHOLDER = "{{PUBLIC_URL}}"
ACTIONS = ["create_invoice", "create_estimate", "create_sales_receipt", "create_paid_invoice",
           "create_expense", "create_refund_receipt"]

# API body member -> hsmeta config member, in the order written. "published" becomes
# "isPublished"; supportedClients has no API counterpart (the v4 API serves workflows).
CONFIG_KEYS = [
    ("actionUrl", "actionUrl"),
    ("published", "isPublished"),
    (None, "supportedClients"),
    ("objectTypes", "objectTypes"),
    ("objectRequestOptions", "objectRequestOptions"),
    ("inputFields", "inputFields"),
    ("inputFieldDependencies", "inputFieldDependencies"),
    ("outputFields", "outputFields"),
    ("executionRules", "executionRules"),
    ("labels", "labels"),
]
SUPPORTED_CLIENTS = [{"client": "WORKFLOWS"}]

HSPROJECT = {"name": "hsqb", "srcDir": "src", "platformVersion": "2025.2"}

# The app that owns the actions. Static auth: the worker reads each portal's token from
# Redis (`hsqb-worker credentials hubspot`), which is what a static-auth install hands out.
# Scopes: the CRM reads of a document (reference hubspot-api.md 4.9) and `automation` for
# completing blocked executions.
APP = {
    "uid": "hsqb",
    "type": "app",
    "config": {
        "name": "QuickBooks Online (hsqb)",
        "description": "Workflow actions that create QuickBooks Online invoices, estimates, "
                       "sales receipts, paid invoices, expenses and refund receipts from "
                       "HubSpot deals, quotes and payments.",
        "distribution": "private",
        "auth": {
            "type": "static",
            "requiredScopes": [
                "automation",
                "crm.objects.companies.read",
                "crm.objects.contacts.read",
                "crm.objects.deals.read",
                "crm.objects.line_items.read",
                "crm.objects.products.read",
                "crm.objects.quotes.read",
                "crm.objects.commercepayments.read",
                "tax_rates.read",
            ],
            "optionalScopes": [],
            "conditionallyRequiredScopes": [],
        },
        "permittedUrls": {"fetch": [], "iframe": [], "img": []},
    },
}

WIDTH = 96  # a value whose compact form fits on its line stays on one line


def dump(value, indent=0, lead=0):
    """JSON with two-space indentation; an array or object whose compact form fits on its
    line (indent + lead characters already there) stays on one line."""
    flat = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    if not isinstance(value, (dict, list)) or not value or indent + lead + len(flat) <= WIDTH:
        return flat
    pad = " " * (indent + 2)
    if isinstance(value, list):
        items = [pad + dump(v, indent + 2) for v in value]
    else:
        items = []
        for k, v in value.items():
            key = json.dumps(k, ensure_ascii=False) + ": "
            items.append(pad + key + dump(v, indent + 2, len(key)))
    close = "]" if isinstance(value, list) else "}"
    return ("[" if close == "]" else "{") + "\n" + ",\n".join(items) + "\n" + " " * indent + close


def load_body(action, actions_dir=ACTIONS_DIR):
    path = os.path.join(actions_dir, action + ".json")
    with open(path, encoding="utf-8") as f:
        body = json.load(f)
    if not isinstance(body, dict):
        raise ValueError("%s: not a JSON object" % path)
    known = {api for api, _ in CONFIG_KEYS if api}
    unknown = sorted(set(body) - known)
    if unknown:
        raise ValueError("%s: %s cannot be carried into the project (teach gen-project.py)"
                         % (path, ", ".join(unknown)))
    return body


def hsmeta(action, body):
    config = {}
    for api, meta in CONFIG_KEYS:
        if api is None:
            config[meta] = SUPPORTED_CLIENTS
        elif api in body:
            config[meta] = body[api]
    return {"uid": "hsqb_" + action, "type": "workflow-action", "config": config}


def project_files(actions_dir=ACTIONS_DIR):
    """{relative path: file text} of the whole project."""
    files = {
        "hsproject.json": dump(HSPROJECT) + "\n",
        os.path.join("src", "app", "app-hsmeta.json"): dump(APP) + "\n",
    }
    for action in ACTIONS:
        rel = os.path.join("src", "app", "workflow-actions", action + "-hsmeta.json")
        files[rel] = dump(hsmeta(action, load_body(action, actions_dir))) + "\n"
    return files


def existing_files(root):
    out = set()
    for dirpath, _, names in os.walk(root):
        for name in names:
            out.add(os.path.relpath(os.path.join(dirpath, name), root))
    return out


def drift(root=PROJECT_DIR, actions_dir=ACTIONS_DIR):
    """Paths (relative to root) that differ from what the bodies generate, or are extra."""
    want = project_files(actions_dir)
    bad = []
    for rel, text in sorted(want.items()):
        path = os.path.join(root, rel)
        try:
            with open(path, encoding="utf-8") as f:
                if f.read() != text:
                    bad.append(rel)
        except FileNotFoundError:
            bad.append(rel + " (missing)")
    bad += [rel + " (not generated)" for rel in sorted(existing_files(root) - set(want))]
    return bad


def write(root, public_url=None):
    for rel, text in project_files().items():
        if public_url:
            text = text.replace(PLACEHOLDER, public_url)
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="report drift, write nothing")
    ap.add_argument("--public-url", help="replace {{PUBLIC_URL}} (https://host[:port])")
    ap.add_argument("--out", help="output directory (default deploy/hubspot/project)")
    args = ap.parse_args(argv)
    if args.check:
        bad = drift()
        for rel in bad:
            print("drifted: deploy/hubspot/project/" + rel)
        return 1 if bad else 0
    if args.public_url and not re.fullmatch(r"https?://[A-Za-z0-9.\-\[\]:]+", args.public_url):
        ap.error("--public-url must be scheme://host[:port] without a path")
    if args.public_url and not args.out:
        ap.error("--public-url needs --out (the committed project keeps the placeholder)")
    write(args.out or PROJECT_DIR, args.public_url)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
