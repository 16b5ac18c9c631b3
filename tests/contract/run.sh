#!/bin/sh
# Contract tests: independent vendor clients (@hubspot/api-client, node-quickbooks,
# intuit-oauth) against hsqb-sandbox. Builds nothing: expects $BUILD/hsqb-sandbox
# (BUILD defaults to "build", relative to the project root). Installs the pinned npm
# packages with `npm ci` when node_modules is missing or older than package-lock.json,
# starts one sandbox on an ephemeral 127.0.0.1 port, runs the tests one file at a time
# (they share the sandbox and reset it) with TAP output, and stops the sandbox.
# Exit status: the test runner's (non-zero on any failure), or 2 on a setup error.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) build_dir=$BUILD ;; *) build_dir=$root/$BUILD ;; esac
sandbox_bin=$build_dir/hsqb-sandbox

die() { echo "contract: $*" >&2; exit 2; }

[ -x "$sandbox_bin" ] || die "$sandbox_bin not found (build it first: make $BUILD/hsqb-sandbox)"
command -v node >/dev/null 2>&1 || die "node not found"
command -v npm >/dev/null 2>&1 || die "npm not found"

# --- npm dependencies (pinned by package-lock.json) ------------------------------------
stamp=$here/node_modules/.hsqb-lock.sha256
want=$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)
have=$(cat "$stamp" 2>/dev/null || true)
# The stamp alone is not proof: node_modules can lose its packages (a checkout that
# stopped tracking them deletes them and leaves the untracked stamp behind).
if [ ! -d "$here/node_modules/@hubspot/api-client" ] || [ ! -d "$here/node_modules/intuit-oauth" ] ||
    [ ! -d "$here/node_modules/node-quickbooks" ] || [ "$want" != "$have" ]; then
    echo "# contract: npm ci" >&2
    (cd "$here" && npm ci --no-audit --no-fund --prefer-offline --loglevel=error >&2) ||
        die "npm ci failed"
    echo "$want" >"$stamp"
fi

# --- sandbox ---------------------------------------------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hsqb-contract.XXXXXX")
pid=
cleanup() {
    if [ -n "$pid" ]; then
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$sandbox_bin" --listen 127.0.0.1:0 --port-file "$tmp/port" --seed "$root/tests/sandbox/seed" \
    >"$tmp/sandbox.log" 2>&1 &
pid=$!
i=0
while [ ! -s "$tmp/port" ]; do
    if ! kill -0 "$pid" 2>/dev/null; then
        cat "$tmp/sandbox.log" >&2
        pid=
        die "hsqb-sandbox exited before listening"
    fi
    i=$((i + 1))
    [ "$i" -le 100 ] || { cat "$tmp/sandbox.log" >&2; die "hsqb-sandbox did not write its port in 5 s"; }
    sleep 0.05
done
HSQB_SANDBOX_URL=http://127.0.0.1:$(cat "$tmp/port")
export HSQB_SANDBOX_URL

# --- tests -----------------------------------------------------------------------------
echo "# contract: node $(node --version), sandbox $HSQB_SANDBOX_URL"
cd "$here"
set +e
node --test --test-reporter=tap --test-concurrency=1 --test-timeout=30000 test/*.test.js
rc=$?
# Stop the sandbox here so its exit status counts: a clean SIGTERM exit is 0, and under
# a sanitizer build (BUILD=build-asan) a leak or error report makes it non-zero.
kill -TERM "$pid" 2>/dev/null
wait "$pid"
src=$?
pid=
set -e
if [ "$src" -ne 0 ]; then
    echo "# contract: hsqb-sandbox exited with status $src" >&2
    [ "$rc" -ne 0 ] || rc=1
fi
if [ "$rc" -ne 0 ]; then
    echo "# contract: failed (exit $rc); sandbox log:" >&2
    sed 's/^/#   /' "$tmp/sandbox.log" >&2
fi
exit "$rc"
