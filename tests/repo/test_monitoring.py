"""The alerting rules and the Grafana dashboard in deploy/k8s work against the worker as
it is: promtool accepts the rules and their unit tests pass, every alert carries what an
on-call person needs, and every metric and label name a rule or a panel uses is one the
worker exports.

The exported names come from a real `/metrics` scrape of a freshly started worker (the
dev stack and one replica, via tests/integration/harness.py, about 10 s). That is
complete before any event ran: metrics_render.c writes `# HELP`/`# TYPE` of every family,
samples or not. A fresh scrape has no samples, hence no label names, for most families;
those come from the family table in worker/metrics.c, cross-checked against the scrape.

promtool is Debian's `prometheus` package (`make deps` installs it); without it these
tests fail, they do not skip."""
import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RULES = os.path.join(ROOT, "deploy", "k8s", "monitoring", "prometheusrule.yaml")
RULES_TEST = os.path.join(ROOT, "tests", "repo", "prometheusrule_test.yaml")
DASHBOARD = os.path.join(ROOT, "deploy", "k8s", "grafana-dashboard.json")
METRICS_C = os.path.join(ROOT, "worker", "metrics.c")

sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import harness  # noqa: E402

SEVERITIES = {"critical", "warning", "info"}
# Labels Prometheus adds to every scraped series (a PodMonitor: namespace, pod).
TARGET_LABELS = {"namespace", "pod", "job", "instance"}
# Grafana's interval variables, and a stand-in value for the dashboard's own variables.
GRAFANA_INTERVALS = re.compile(r"\$(?:__rate_interval|__interval|__range)\b|\$\{__\w+\}")
GRAFANA_VARIABLE = re.compile(r"\$\{?(\w+)\}?")


# ---- the documents -----------------------------------------------------------------------

def rule_groups():
    with open(RULES, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    assert doc["apiVersion"] == "monitoring.coreos.com/v1" and doc["kind"] == "PrometheusRule"
    return doc["spec"]["groups"]


def alerts():
    return [r for g in rule_groups() for r in g["rules"] if "alert" in r]


def dashboard():
    with open(DASHBOARD, encoding="utf-8") as f:
        return json.load(f)


def panels(dash):
    """Every panel, those inside collapsed rows included."""
    for p in dash["panels"]:
        yield p
        yield from p.get("panels", [])


def dashboard_queries(dash):
    """(where, PromQL with Grafana's variables) of every panel target."""
    for p in panels(dash):
        for t in p.get("targets", []):
            if t.get("expr"):
                yield "panel %r %s" % (p["title"], t["refId"]), t["expr"]


def variable_queries(dash):
    """(where, selector, label) of every label_values(selector, label) variable."""
    for v in dash["templating"]["list"]:
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", q or "")
        if v["type"] == "query":
            assert m, "variable %s: only label_values(selector, label) is checked" % v["name"]
            yield "variable " + v["name"], m.group(1), m.group(2)


def as_promql(expr):
    """A dashboard expression as plain PromQL: intervals become 5m, variables x."""
    return GRAFANA_VARIABLE.sub("x", GRAFANA_INTERVALS.sub("5m", expr))


# ---- what the worker exports ---------------------------------------------------------------

def family_table():
    """{family: (kind, [labels])} from fam_defs in worker/metrics.c."""
    with open(METRICS_C, encoding="utf-8") as f:
        src = f.read()
    rows = re.findall(r'\[F_\w+\]\s*=\s*\{\s*"(\w+)",(?:\s*"(?:[^"\\]|\\.)*")+\s*,'
                      r'\s*K_(\w+),\s*\d+,\s*\{([^}]*)\}', src)
    assert len(rows) == len(re.findall(r"^\s*\[F_\w+\]\s*=", src, re.M)), (
        "could not read every row of fam_defs in worker/metrics.c")
    return {name: (kind.lower(), re.findall(r'"(\w+)"', labels)) for name, kind, labels in rows}


class Catalog:
    """Metric names a scrape shows, their types and label names."""

    def __init__(self, text, table):
        samples, self.types = harness.parse_metrics(text)
        self.labels = {}
        for fam in self.types:
            for name in self.series_names(fam):
                self.labels[name] = {"le"} if name.endswith("_bucket") else set()
        for (name, labs) in samples:
            self.labels.setdefault(name, set()).update(k for k, _ in labs)
        for fam, (kind, labs) in table.items():
            assert self.types.get(fam) == kind, (
                "worker/metrics.c declares %s %s, /metrics says %s" % (kind, fam, self.types.get(fam)))
            for name in self.series_names(fam):
                self.labels[name].update(labs)
        self.counters = {n for fam, kind in self.types.items() if kind in ("counter", "histogram")
                         for n in self.series_names(fam)}

    def series_names(self, fam):
        if self.types[fam] == "histogram":
            return [fam + "_bucket", fam + "_sum", fam + "_count"]
        return [fam]


# ---- reading PromQL -------------------------------------------------------------------------
# Enough of PromQL for expressions promtool has parsed: string literals, selectors, grouping
# clauses, ranges and offsets are cut out in that order; what is left of the identifiers
# that do not open a call are metric names.

STRING_RE = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
SELECTOR_RE = re.compile(r"([a-zA-Z_:][\w:]*)?\{([^}]*)\}")
MATCHER_RE = re.compile(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)")
GROUPING_RE = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
RANGE_RE = re.compile(r"\[[^\]]*\]")
OFFSET_RE = re.compile(r"\boffset\s+-?\w+")
IDENT_RE = re.compile(r"(?<![\w.:])([a-zA-Z_:][\w:]*)(?![\w:])(?!\s*\()")
COUNTER_FUNC_RE = re.compile(r"\b(rate|irate|increase)\s*\(\s*([a-zA-Z_:][\w:]*)")
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and",
            "or", "unless", "offset", "inf", "nan"}


def promql_refs(expr):
    """(metric names, [(metric or None, matcher label)], grouping labels, [counter-function
    arguments]) of one expression."""
    e = STRING_RE.sub('""', expr)
    counter_args = [m.group(2) for m in COUNTER_FUNC_RE.finditer(e)]
    matchers = []
    for m in SELECTOR_RE.finditer(e):
        matchers += [(m.group(1), lab) for lab in MATCHER_RE.findall(m.group(2))]
    e = SELECTOR_RE.sub(lambda m: " %s " % (m.group(1) or ""), e)
    grouping = set()
    for m in GROUPING_RE.finditer(e):
        grouping.update(lab.strip() for lab in m.group(2).split(",") if lab.strip())
    e = OFFSET_RE.sub(" ", RANGE_RE.sub(" ", GROUPING_RE.sub(" ", e)))
    names = {n for n in IDENT_RE.findall(e) if n not in KEYWORDS}
    return names, matchers, grouping, counter_args


def problems(expr, cat):
    """What is wrong with the names in one expression, as sentences; [] when nothing."""
    names, matchers, grouping, counter_args = promql_refs(expr)
    out = ["unknown metric %s" % n for n in sorted(names - set(cat.labels))]
    known = names & set(cat.labels)
    for name, lab in matchers:
        if lab in TARGET_LABELS or lab == "__name__":
            continue
        if name and name in cat.labels and lab not in cat.labels[name]:
            out.append("%s has no label %s" % (name, lab))
        elif not name and not any(lab in cat.labels[n] for n in known):
            out.append("no metric here has the label %s" % lab)
    for lab in sorted(grouping - TARGET_LABELS):
        if not any(lab in cat.labels[n] for n in known):
            out.append("grouping by %s, which no metric here has" % lab)
    for n in counter_args:
        if n in cat.labels and n not in cat.counters:
            out.append("rate/increase over %s, which is no counter" % n)
    if "histogram_quantile" in expr and not (
            "le" in grouping and any(n.endswith("_bucket") for n in known)):
        out.append("histogram_quantile needs a _bucket series aggregated by le")
    return out


# ---- fixtures ---------------------------------------------------------------------------------

def promtool():
    path = shutil.which("promtool")
    assert path, "promtool not found: install Debian's prometheus package (make deps)"
    return path


def run_promtool(*args, cwd=None):
    r = subprocess.run([promtool(), *args], capture_output=True, text=True, timeout=120, cwd=cwd)
    assert r.returncode == 0, "promtool %s failed:\n%s%s" % (" ".join(args), r.stdout, r.stderr)
    return r.stdout


def write_rules(path, groups):
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump({"groups": groups}, f, sort_keys=False)


@pytest.fixture(scope="module")
def catalog():
    logdir = harness.build_dir() / "test-logs" / "repo-metrics"
    shutil.rmtree(logdir, ignore_errors=True)
    h = harness.Harness(logdir)
    try:
        h.start(replicas=1)
        text = h.replicas[0].metrics_text()
    finally:
        h.stop()
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    return Catalog(text, family_table())


# ---- the rules --------------------------------------------------------------------------------

def test_rules_pass_promtool_check(tmp_path):
    write_rules(tmp_path / "hsqb-rules.yaml", rule_groups())
    out = run_promtool("check", "rules", "--lint-fatal", str(tmp_path / "hsqb-rules.yaml"))
    assert "SUCCESS" in out


def test_rules_unit_tests(tmp_path):
    """tests/repo/prometheusrule_test.yaml: the alerts fire when they should, and only then."""
    write_rules(tmp_path / "hsqb-rules.yaml", rule_groups())
    shutil.copy(RULES_TEST, tmp_path / "prometheusrule_test.yaml")
    run_promtool("test", "rules", "prometheusrule_test.yaml", cwd=tmp_path)


def test_unit_tests_cover_several_alerts():
    with open(RULES_TEST, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    tested = {a["alertname"] for t in doc["tests"] for a in t.get("alert_rule_test", [])}
    assert tested <= {a["alert"] for a in alerts()}, "tests name alerts that do not exist"
    assert len(tested) >= 2


def heading_anchors(path):
    """GitHub's anchors of the Markdown headings of one file."""
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        heads = re.findall(r"^#+\s+(.*?)\s*$", f.read(), re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in heads}


def test_every_alert_is_complete():
    names = [a["alert"] for a in alerts()]
    assert len(names) == len(set(names)), "alert names repeat"
    for a in alerts():
        where = a["alert"]
        assert re.fullmatch(r"\d+[smh]", str(a.get("for", ""))), where + ": no for: duration"
        assert a.get("labels", {}).get("severity") in SEVERITIES, where + ": severity"
        ann = a.get("annotations", {})
        for key in ("summary", "description", "runbook"):
            assert ann.get(key, "").strip(), "%s: no %s annotation" % (where, key)
        path, _, anchor = ann["runbook"].partition("#")
        assert anchor in heading_anchors(path), "%s: runbook %s names no heading" % (
            where, ann["runbook"])


def test_rules_use_exported_names(catalog):
    found = []
    for g in rule_groups():
        for r in g["rules"]:
            found += ["%s: %s" % (r.get("alert") or r.get("record"), p)
                      for p in problems(r["expr"], catalog)]
    assert not found, "\n".join(found)


# ---- the dashboard ----------------------------------------------------------------------------

def test_dashboard_is_well_formed():
    dash = dashboard()
    ids = [p["id"] for p in panels(dash)]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    defined = {v["name"] for v in dash["templating"]["list"]}
    for p in panels(dash):
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24, "panel %r is wider than the grid" % p["title"]
        if p["type"] == "row":
            continue
        assert p["datasource"]["uid"] == "${datasource}", p["title"]
        assert p.get("targets"), "panel %r has no query" % p["title"]
        for t in p["targets"]:
            used = set(GRAFANA_VARIABLE.findall(GRAFANA_INTERVALS.sub("", t["expr"])))
            assert used <= defined, "panel %r uses undefined %s" % (p["title"], used - defined)


def test_dashboard_queries_parse(tmp_path):
    """Each panel query, variables filled in, through promtool's PromQL parser."""
    rules = [{"record": "dashboard:query_%d" % i, "expr": as_promql(expr)}
             for i, (_, expr) in enumerate(dashboard_queries(dashboard()))]
    assert rules
    write_rules(tmp_path / "dashboard.yaml", [{"name": "dashboard", "rules": rules}])
    run_promtool("check", "rules", "--lint=none", str(tmp_path / "dashboard.yaml"))


def test_dashboard_uses_exported_names(catalog):
    dash = dashboard()
    found = ["%s: %s" % (where, p) for where, expr in dashboard_queries(dash)
             for p in problems(as_promql(expr), catalog)]
    for where, selector, label in variable_queries(dash):
        found += ["%s: %s" % (where, p) for p in problems(as_promql(selector), catalog)]
        names = promql_refs(as_promql(selector))[0]
        if label not in TARGET_LABELS and not any(label in catalog.labels.get(n, ()) for n in names):
            found.append("%s: no metric of %s has the label %s" % (where, selector, label))
    assert not found, "\n".join(found)


def test_checker_catches_what_it_is_for(catalog):
    """The checks above can fail: each of these slips is reported."""
    assert problems('sum(rate(hsqb_event_total{namespace="x"}[5m]))', catalog) == [
        "unknown metric hsqb_event_total"]
    assert problems('sum by (code) (hsqb_dlq_total{cdoe="X"})', catalog) == [
        "hsqb_dlq_total has no label cdoe"]
    assert problems("sum by (tenant) (hsqb_dlq_total)", catalog) == [
        "grouping by tenant, which no metric here has"]
    assert problems("rate(hsqb_in_flight[5m])", catalog) == [
        "rate/increase over hsqb_in_flight, which is no counter"]
    assert problems("histogram_quantile(0.9, sum by (action) (rate("
                    "hsqb_event_duration_seconds_bucket[5m])))", catalog) == [
        "histogram_quantile needs a _bucket series aggregated by le"]
    assert problems('histogram_quantile(0.9, sum by (le, action) (rate('
                    'hsqb_event_duration_seconds_bucket{pod=~"a|b"}[5m] offset 1h)))', catalog) == []
