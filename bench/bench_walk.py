"""The walk alone: slopfast.walk.walk() on the C walk against the Python walk (issue 11).

    python bench/bench_walk.py [--rounds N] [--python PYTHON] TREE...

Each round runs, for each walk and in alternating order, a fresh process that imports
slopfast, loads the library, then times one walk of TREE as `slopfast aggregate` makes
it (check_files=False: the events the aggregate stream consumes, all of them taken into
a list; the first walk of a process, so the Python walk's imports and pattern
compilation are in it, as in a command). Reported per tree and walk: best and median
milliseconds, and microseconds per event at the median. The two walks' events are
checked to be equal.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

CHILD = r"""
import sys, time, hashlib
from slopfast import native, walk as W
native.available()
t = time.perf_counter()
events = list(W.walk([sys.argv[1]], W.WalkOptions(check_files=False), native=sys.argv[2] == "native"))
dt = time.perf_counter() - t
digest = hashlib.sha256(repr(events).encode("utf-8", "surrogateescape")).hexdigest()[:16]
print(dt, len(events), digest)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trees", nargs="+")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--python", default=sys.executable, help="the Python whose slopfast is measured")
    args = ap.parse_args()
    print("| tree | events | walk | best (ms) | median (ms) | µs per event (median) |")
    print("|---|---:|---|---:|---:|---:|")
    for tree in args.trees:
        times: dict[str, list[float]] = {"python": [], "native": []}
        seen = {}
        for r in range(args.rounds + 1):          # round 0: warm-up (page cache)
            for walk in (("python", "native") if r % 2 else ("native", "python")):
                out = subprocess.run([args.python, "-c", CHILD, tree, walk], capture_output=True, text=True, check=True)
                dt, n, digest = out.stdout.split()
                seen[walk] = (int(n), digest)
                if r:
                    times[walk].append(float(dt))
        assert seen["python"] == seen["native"], f"{tree}: the walks differ: {seen}"
        n = seen["native"][0]
        for walk, ts in times.items():
            med = statistics.median(ts)
            print(f"| {tree} | {n:,} | {walk} | {1e3 * min(ts):.1f} | {1e3 * med:.1f} | {1e6 * med / max(n, 1):.1f} |")


if __name__ == "__main__":
    main()
