"""Token counting in the whole command: `slopfast aggregate` plain, with
--stats, and with --budget, counting on two threads and on one
(SLOPFAST_THREADS=1), interleaved round by round (medians, peak RSS),
and the count of each --budget document by tiktoken (docs/benchmarks-cli.md,
"Token counts and budgets").

    python bench/bench_budget.py --slopfast VENV/bin/slopfast DIR [DIR ...] [--rounds 5] [--budget 100k]

Each run is a fresh process writing to a file in a temporary directory; the
first round of each command warms the page cache and the dispatcher's
wisdom and is not counted.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one run."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, **env})
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        sys.exit(f"{' '.join(cmd)} failed:\n{err}")
    return wall, usage.ru_maxrss


def tiktoken_count(path: str) -> int:
    from slopfast import tokens
    from slopfast.fallbacks import tokens as fb_tokens
    enc = fb_tokens.encoding("o200k_base", lambda: tokens._ranks("o200k_base").ranks)
    with open(path, "rb") as f:
        return len(enc.encode_ordinary(f.read().decode("utf-8", "replace")))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dirs", nargs="+")
    ap.add_argument("--slopfast", required=True, help="the slopfast command to measure")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--budget", default="100k")
    args = ap.parse_args()
    print(f"load {open('/proc/loadavg').read().split()[:3]}; {args.rounds} rounds after one warm-up\n")
    print("| tree | plain | --tokens | --stats | --budget " + args.budget + " | --stats ÷ plain | --budget ÷ plain "
          "| one thread: --stats ÷ plain, --budget ÷ plain | peak RSS plain / stats / budget | budget document, tiktoken |")
    print("|---|---:|---:|---:|---:|---:|---:|---|---|---:|")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for k, tree in enumerate(args.dirs):
            out = os.path.join(tmp, f"out{k}.md")
            # the last variant is --budget: its document is the one counted below
            variants = {"plain": [], "--tokens": ["--tokens"], "1 --stats": ["--stats"], "1 --budget": ["--budget", args.budget],
                        "--stats": ["--stats"], "--budget": ["--budget", args.budget]}
            times: dict[str, list[float]] = {k: [] for k in variants}
            rss: dict[str, int] = dict.fromkeys(variants, 0)
            for r in range(args.rounds + 1):
                for name, extra in variants.items():
                    env = {"SLOPFAST_THREADS": "1"} if name.startswith("1 ") else {}
                    wall, peak = run([args.slopfast, "aggregate", tree, "-o", out, "-q", *extra], env)
                    if r:
                        times[name].append(wall)
                        rss[name] = max(rss[name], peak)
            rows.append((tree, out, {k: statistics.median(v) for k, v in times.items()}, rss))
        # counted once every command has run: a child forked from a parent that holds tiktoken
        # and a document would report the parent's pages as its peak RSS
        for tree, out, med, rss in rows:
            counted = tiktoken_count(out)    # the last run of each tree was --budget
            print(f"| {os.path.basename(tree.rstrip('/'))} | {med['plain']:.3f} s | {med['--tokens']:.3f} s "
                  f"| {med['--stats']:.3f} s | {med['--budget']:.3f} s | {med['--stats'] / med['plain']:.2f} "
                  f"| {med['--budget'] / med['plain']:.2f} | {med['1 --stats'] / med['plain']:.2f}, "
                  f"{med['1 --budget'] / med['plain']:.2f} | {rss['plain'] // 1024} / {rss['--stats'] // 1024} / "
                  f"{rss['--budget'] // 1024} MiB | {counted:,} |")


if __name__ == "__main__":
    main()
