"""A real browser for the integration tests: Debian's Chromium, headless, driven by
tests/browser/drive.mjs (playwright-core), one browser per walk.

    b = Browser(logdir / "browser")
    walk = b.walk("connect-us1", [
        {"name": "connect", "goto": url},                 # follows the redirects
        {"name": "pick", "check": "#realm-" + US1},
        {"name": "callback", "click": "#connect", "keep": "qbo-connected"},
    ])
    walk["callback"]["ids"]["result"]["text"]   # what the page said

A walk is a list of steps (the verbs and the record of each step are documented at the top
of drive.mjs); this module runs the driver, keeps its plan, its answer and a screenshot per
step under logdir/<walk name>/ (the test logs), and raises when a step could not be done
(a missing element is a failed test, not a silent skip). A step's "keep": NAME also copies
its screenshot to $HSQB_SCREENSHOTS/NAME.png when that is set (`make screenshots`: the
README's pictures).

Run with Debian's /usr/bin/python3; needs `make browser-deps` (run here when missing).
"""
import json
import os
import pathlib
import shutil
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]
DRIVER = ROOT / "tests" / "browser" / "drive.mjs"
NODE_MODULES = ROOT / "tests" / "browser" / "node_modules"
CHROMIUM = os.environ.get("HSQB_CHROMIUM", "/usr/bin/chromium")
WALK_TIMEOUT_S = 120


class WalkFailed(AssertionError):
    pass


class Walk:
    """What the driver answered: .steps (records in order), walk[name] (a step's record),
    .browser (Chromium's version)."""

    def __init__(self, name, doc, dir):
        self.name = name
        self.doc = doc
        self.dir = dir
        self.steps = doc.get("steps", [])
        self.browser = doc.get("browser")

    def __getitem__(self, name):
        for s in self.steps:
            if s["name"] == name:
                return s
        raise KeyError("walk %s has no step %r (steps: %s)" % (
            self.name, name, [s["name"] for s in self.steps]))

    @staticmethod
    def text_of(step, element_id):
        """The visible text of the element with that id on a step's page, or None."""
        el = step["ids"].get(element_id)
        return el["text"] if el else None


def ensure_driver():
    """playwright-core installed (make browser-deps) and Chromium present, or a clear error."""
    if not pathlib.Path(CHROMIUM).exists():
        raise RuntimeError("%s missing: run `make deps` (Debian package chromium)" % CHROMIUM)
    if not (NODE_MODULES / "playwright-core" / "package.json").exists():
        r = subprocess.run(["make", "-s", "--no-print-directory", "browser-deps"], cwd=str(ROOT),
                           capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise RuntimeError("make browser-deps failed:\n%s%s" % (r.stdout, r.stderr))


class Browser:
    def __init__(self, logdir):
        self.logdir = pathlib.Path(logdir)
        self.logdir.mkdir(parents=True, exist_ok=True)
        for stale in self.logdir.glob("profile-*.json"):  # a profile starts signed out
            stale.unlink()
        self.keep_dir = os.environ.get("HSQB_SCREENSHOTS")
        ensure_driver()

    def walk(self, name, steps, viewport=None, timeout_ms=15000, profile=None):
        """Runs the steps in a fresh headless Chromium; returns the Walk, or raises
        WalkFailed naming the step that could not be done. profile: a name whose cookies
        carry from one walk to the next (a signed-in session), else none do."""
        d = self.logdir / name
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        plan = {"shots": str(d), "timeout_ms": timeout_ms,
                "viewport": viewport or {"width": 1000, "height": 700},
                "steps": [{k: v for k, v in s.items() if k != "keep"} for s in steps]}
        if profile:
            plan["storage"] = str(self.logdir / ("profile-%s.json" % profile))
        (d / "plan.json").write_text(json.dumps(plan, indent=1))
        r = subprocess.run(["node", str(DRIVER), str(d / "plan.json")], cwd=str(DRIVER.parent),
                           capture_output=True, text=True, timeout=WALK_TIMEOUT_S)
        (d / "walk.json").write_text(r.stdout)
        (d / "driver.stderr").write_text(r.stderr)
        try:
            doc = json.loads(r.stdout)
        except ValueError:
            raise WalkFailed("walk %s: the driver exited %d without an answer:\n%s" % (
                name, r.returncode, r.stderr[-2000:])) from None
        w = Walk(name, doc, d)
        if doc.get("error") or r.returncode != 0:
            last = w.steps[-1] if w.steps else {}
            raise WalkFailed("walk %s: %s (exit %d); the page was %s %r: %s\n(see %s)" % (
                name, doc.get("error"), r.returncode, last.get("url"), last.get("title"),
                (last.get("text") or "")[:500], d))
        self._keep(steps, w)
        return w

    def _keep(self, steps, w):
        if not self.keep_dir:
            return
        out = pathlib.Path(self.keep_dir)
        if not out.is_absolute():
            out = ROOT / out
        out.mkdir(parents=True, exist_ok=True)
        for s, rec in zip(steps, w.steps):
            if s.get("keep") and rec.get("screenshot"):
                shutil.copy(rec["screenshot"], out / ("%s.png" % s["keep"]))
