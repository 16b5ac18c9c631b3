#!/usr/bin/python3
"""Where a replica's allocations come from: ranks the call stacks alloc_count.c sampled.

    ALLOC_COUNT_STACKS=16 make bench BENCH_ARGS="--scenarios latency --quick"
    tests/bench/alloc_stacks.py tests/bench/out/logs/alloc-PID.stk [--events N] [--top 40]

Each sample is one allocation call in ALLOC_COUNT_STACKS; the report names, for the
worker's own frames, the innermost one (who asked) and the chain of the three innermost
(the path), and for every sample its innermost frame outside libc (the library that
allocated). With --events, counts are scaled to allocation calls per event (samples x
every / events), else shares of all samples. Frames are named with addr2line from the
process's maps (alloc-PID.maps beside the samples).
"""

import argparse
import collections
import pathlib
import struct
import subprocess
import sys

DEPTH = 16
KINDS = {1: "malloc", 2: "calloc", 3: "realloc"}


def read_maps(path):
    """[(start, end, base, file)] of file-backed executable mappings; base is the address
    of the file's offset 0 (what addr2line's addresses are relative to)."""
    maps, first = [], {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) < 6 or not parts[5].startswith("/"):
            continue
        lo, hi = (int(x, 16) for x in parts[0].split("-"))
        off = int(parts[2], 16)
        first.setdefault(parts[5], lo - off)
        if "x" in parts[1]:
            maps.append((lo, hi, first[parts[5]], parts[5]))
    return maps


def locate(maps, addr):
    for lo, hi, base, f in maps:
        if lo <= addr < hi:
            return f, addr - base
    return None, addr


def symbolize(by_file):
    """{(file, rel): "func (file:line)"} with one addr2line per file."""
    out = {}
    for f, rels in by_file.items():
        rels = sorted(rels)
        try:
            r = subprocess.run(["addr2line", "-f", "-C", "-e", f] + ["%x" % (x - 1) for x in rels],
                               capture_output=True, text=True, timeout=120)
            lines = r.stdout.splitlines()
        except (OSError, subprocess.TimeoutExpired):
            lines = []
        for i, rel in enumerate(rels):
            fn = lines[2 * i] if 2 * i + 1 < len(lines) else "??"
            loc = lines[2 * i + 1] if 2 * i + 1 < len(lines) else "??"
            short = pathlib.Path(f).name
            if fn == "??":
                fn = "%s+0x%x" % (short, rel)
            loc = loc.split(" (")[0]
            if "/work/" in loc or loc.startswith(("worker/", "common/")):
                loc = loc.split("/wt-dom/")[-1].split("/main/")[-1]
                out[(f, rel)] = "%s (%s)" % (fn, loc)
            else:
                out[(f, rel)] = "%s [%s]" % (fn, short)
    return out


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("stk", type=pathlib.Path)
    ap.add_argument("--every", type=int, default=16, help="ALLOC_COUNT_STACKS of the run")
    ap.add_argument("--events", type=int, default=0, help="events the replica handled")
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--worker", default="hsqb-worker", help="the program's file name")
    a = ap.parse_args(argv)
    maps = read_maps(a.stk.with_suffix(".maps"))
    raw = a.stk.read_bytes()
    samples = []
    for i in range(0, len(raw) - 8 * DEPTH + 1, 8 * DEPTH):
        slot = struct.unpack_from("<%dQ" % DEPTH, raw, i)
        if slot[0] == 0:
            break
        samples.append((slot[0], [x for x in slot[1:] if x]))
    if not samples:
        print("no samples in %s" % a.stk)
        return 1
    by_file = collections.defaultdict(set)
    located = []
    for kind, frames in samples:
        fr = [locate(maps, x) for x in frames[1:]]  # frames[0] is count()/sample() itself
        located.append((kind, fr))
        for f, rel in fr:
            if f:
                by_file[f].add(rel)
    names = symbolize(by_file)

    def name(fr):
        f, rel = fr
        return names.get(fr, "0x%x" % rel) if f else "0x%x" % rel

    inner, path, lib = collections.Counter(), collections.Counter(), collections.Counter()
    for kind, fr in located:
        fr = [x for x in fr if x[0] and not x[0].endswith("alloc-count.so")]
        own = [x for x in fr if pathlib.Path(x[0]).name == a.worker]
        ext = [x for x in fr if "libc.so" not in x[0]]
        inner[name(own[0]) if own else "(no worker frame)"] += 1
        path[" <- ".join(name(x).split(" (")[0] for x in own[:3]) or "(none)"] += 1
        lib[pathlib.Path(ext[0][0]).name if ext else "libc"] += 1
    n = len(samples)
    scale = (a.every / a.events) if a.events else (100.0 / n)
    unit = "allocs/event" if a.events else "% of samples"
    print("%d samples (1 in %d allocation calls)%s" % (
        n, a.every, ", %d events" % a.events if a.events else ""))
    for title, ctr in (("innermost worker frame", inner), ("worker path (3 innermost)", path),
                       ("innermost object outside libc", lib)):
        print("\n== %s: %s ==" % (title, unit))
        for k, c in ctr.most_common(a.top):
            print("%8.2f  %s" % (c * scale, k))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
