"""`slopfast aggregate`'s two threads, measured: the walk in a second thread
overlapping the native reader/writer, against the walk first and the
writing after (what one thread does). In one process, best of N rounds
that alternate the two, output to a file outside the tree.

    python bench/bench_stream_threads.py TREE [TREE ...] [--rounds 7]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

from slopfast import aggregate
from slopfast.walk import WalkOptions, walk


def run(tree: str, out: str, overlap: bool) -> float:
    options = WalkOptions(max_file_size=10 << 20, check_files=False)
    t0 = time.perf_counter()
    events = walk([tree], options) if overlap else list(walk([tree], options))
    with aggregate._Output(out) as sink:
        aggregate.stream(events, sink, max_file_size=10 << 20)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trees", nargs="+")
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    os.environ.setdefault("SLOPFAST_BACKEND", "native")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.md")
        print("| tree | walk, then write (1 thread) | walk beside the writer (2 threads) | speed-up |")
        print("|---|---:|---:|---:|")
        for tree in args.trees:
            run(tree, out, True)                     # warm: page cache, imports, dispatcher
            best = {False: float("inf"), True: float("inf")}
            for r in range(args.rounds):
                for overlap in ((False, True) if r % 2 == 0 else (True, False)):
                    best[overlap] = min(best[overlap], run(tree, out, overlap))
            print(f"| {tree} | {best[False] * 1e3:.1f} ms | {best[True] * 1e3:.1f} ms | {best[False] / best[True]:.2f}x |")


if __name__ == "__main__":
    main()
