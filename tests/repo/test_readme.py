"""The README stays true: its source tour names every source file, its configuration
reference is exactly what the config table generates, and the commands it promises
exist in the Makefile."""
import os
import re
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("BUILD", "build")
README = os.path.join(ROOT, "README.md")

# Files a reader should find in the tour: code, scripts, schemas, test programs.
TOUR_DIRS = ["common", "worker", "schemas", "tests", "deploy", ".ci"]
TOUR_EXT = (".c", ".h", ".py", ".js", ".mjs", ".json", ".sh", ".lua", ".md", ".yaml", ".yml", ".conf",
            ".service", ".example", "Dockerfile")
SKIP_PARTS = ("/examples/", "/seeds/", "/node_modules/", "__pycache__", "/corpus",
              "/tests/bench/out/")  # generated, gitignored


def readme():
    with open(README, encoding="utf-8") as f:
        return f.read()


def section(text, title):
    m = re.search(r"^## " + re.escape(title) + r"\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert m, f"README has no '## {title}' section"
    return m.group(1)


def source_files():
    out = []
    for d in TOUR_DIRS:
        for dirpath, _, files in os.walk(os.path.join(ROOT, d)):
            for name in files:
                path = os.path.relpath(os.path.join(dirpath, name), ROOT)
                if any(p in "/" + path for p in SKIP_PARTS):
                    continue
                if name.endswith(TOUR_EXT) or os.access(os.path.join(dirpath, name), os.X_OK):
                    out.append(path)
    return sorted(out)


def test_source_tour_lists_every_file():
    tour = section(readme(), "Source tour")
    listed = set(re.findall(r"`([^`\s]+)`", tour))
    missing = [p for p in source_files() if p not in listed]
    assert not missing, "README source tour lacks: " + ", ".join(missing)


def test_source_tour_names_no_ghosts():
    tour = section(readme(), "Source tour")
    for path in re.findall(r"^- `([^`\s]+)`", tour, re.M):
        assert os.path.exists(os.path.join(ROOT, path)), f"tour names missing file {path}"


def test_config_reference_matches_table():
    text = readme()
    m = re.search(r"<!-- config-reference:begin[^>]*-->\n(.*?)<!-- config-reference:end -->",
                  text, re.S)
    assert m, "README lacks the config-reference markers"
    gen = subprocess.run([os.path.join(ROOT, BUILD, "hsqb-worker"), "config", "markdown"],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    assert m.group(1).strip() == gen.strip(), (
        "README configuration reference is stale: regenerate it with "
        "`build/hsqb-worker config markdown`")


def test_promised_make_targets_exist():
    with open(os.path.join(ROOT, "Makefile"), encoding="utf-8") as f:
        mk = f.read()
    for target in re.findall(r"`make ([a-z-]+)`", readme()):
        assert re.search(r"^" + re.escape(target) + r":", mk, re.M), f"no make target {target}"


def test_example_config_is_current():
    """deploy/hsqb.conf.example lists every setting as the table defines it today."""
    gen = subprocess.run([os.path.join(ROOT, "deploy", "gen-example-config.sh"),
                          os.path.join(ROOT, BUILD, "hsqb-worker")],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    with open(os.path.join(ROOT, "deploy", "hsqb.conf.example"), encoding="utf-8") as f:
        assert f.read() == gen, ("deploy/hsqb.conf.example is stale: run "
                                 "deploy/gen-example-config.sh build/hsqb-worker > deploy/hsqb.conf.example")


def test_fuzz_dictionaries_are_current():
    """tests/fuzz/dicts follow the event schema and the sandbox's seed data."""
    r = subprocess.run([os.path.join(ROOT, "tests", "fuzz", "gen-dicts.py"), "--check"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
