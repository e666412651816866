"""Reading on two threads in the aggregate op (lib/aggregate.c, "reading
ahead"): SLOPFAST_THREADS=1 against 2, for the op alone and for the whole
command (docs/benchmarks-cli.md).

    python bench/bench_read_threads.py TREE [TREE ...] [--rounds 10] [--slopfast VENV/bin/slopfast]

- the op: every file of TREE (sorted, as os.walk finds them) through
  `aggregate._native` in requests of 4,096 files (the stream's largest
  batch), with the load checks, written to a file outside the tree that is
  emptied before each round; median of ROUNDS, the two settings alternating;
- the command: `slopfast aggregate TREE -o OUT -q`, each run timed around
  `wait4` (bench/timing.py), the two settings alternating; median and best.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

from slopfast import aggregate, wire
from slopfast.fallbacks import aggregate as fallback
from timing import run_command

BATCH = 4096


def op_round(inputs: list[wire.Input], fd: int, threads: str) -> float:
    aggregate._THREADS = lambda: threads
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    checks = fallback.Checks(nofollow=True, sniff=True, max_bytes=10 << 20, bom_text=True)
    t = time.perf_counter()
    for at in range(0, len(inputs), BATCH):
        aggregate._native(inputs[at:at + BATCH], wire.MODE_FULL, {}, checks, fd, continues=at > 0,
                          open=at == 0, close=at + BATCH >= len(inputs))
    return time.perf_counter() - t


def command_round(argv: list[str], threads: str) -> float:
    return run_command(argv, {"SLOPFAST_THREADS": threads})[0]


def alternate(run, rounds: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"1": [], "2": []}
    for threads in times:
        run(threads)                                   # warm: page cache, wisdom, imports
    for r in range(rounds):
        for threads in (("1", "2") if r % 2 == 0 else ("2", "1")):
            times[threads].append(run(threads))
    return times


def row(name: str, what: str, times: dict[str, list[float]]) -> str:
    one, two = statistics.median(times["1"]), statistics.median(times["2"])
    return (f"| {name} | {what} | {one * 1e3:.1f} ({min(times['1']) * 1e3:.1f}) | "
            f"{two * 1e3:.1f} ({min(times['2']) * 1e3:.1f}) | {two / one:.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trees", nargs="+")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--slopfast", default=os.path.join(os.path.dirname(sys.executable), "slopfast"))
    args = ap.parse_args()
    os.environ.setdefault("SLOPFAST_BACKEND", "native")
    print("| tree | what | 1 thread: median (best), ms | 2 threads | 2 ÷ 1 |")
    print("|---|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.md")
        for tree in args.trees:
            paths = sorted(os.fsencode(os.path.join(d, f)) for d, _, files in os.walk(tree) for f in files)
            inputs = [wire.Input(p) for p in paths]
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                times = alternate(lambda threads: op_round(inputs, fd, threads), args.rounds)
            finally:
                os.close(fd)
            name = f"{os.path.basename(os.path.normpath(tree))} ({len(inputs):,} files)"
            print(row(name, "the op", times), flush=True)
            argv = [args.slopfast, "aggregate", tree, "-o", out, "-q"]
            print(row(name, "the command", alternate(lambda threads: command_round(argv, threads), args.rounds)),
                  flush=True)


if __name__ == "__main__":
    main()
