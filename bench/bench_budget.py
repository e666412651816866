"""Token counting in the whole command: `slopfast aggregate` plain, with
--stats, and with --budget, counting on two threads and on one
(SLOPFAST_THREADS=1), without the count cache (SLOPFAST_COUNT_CACHE=off),
with it cold (a new cache directory each run) and warm (the cache the
warm-up filled), interleaved round by round (medians, peak RSS), and the
count of each --budget document by tiktoken (docs/benchmarks-cli.md,
"Token counts and budgets").

    python bench/bench_budget.py --slopfast VENV/bin/slopfast DIR [DIR ...] [--rounds 5] [--budget 100k]

Each run is a fresh process writing to a file in a temporary directory; the
first round of each command warms the page cache, the dispatcher's wisdom
and the warm count cache, and is not counted.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile

from timing import run_command


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
          "| one thread: --stats, --budget ÷ plain | count cache: --stats cold, warm ÷ plain; --budget warm ÷ plain "
          "| peak RSS plain / stats / budget | budget document, tiktoken |")
    print("|---|---:|---:|---:|---:|---:|---:|---|---|---|---:|")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        warm = os.path.join(tmp, "warm-cache")
        off = {"SLOPFAST_COUNT_CACHE": "off"}
        for k, tree in enumerate(args.dirs):
            out = os.path.join(tmp, f"out{k}.md")
            budget = ["--budget", args.budget]
            # name: (options, environment); the last is --budget: its document is the one counted below
            variants = {"plain": ([], {}), "--tokens": (["--tokens"], off),
                        "1 --stats": (["--stats"], {**off, "SLOPFAST_THREADS": "1"}),
                        "1 --budget": (budget, {**off, "SLOPFAST_THREADS": "1"}),
                        "cold --stats": (["--stats"], None), "warm --stats": (["--stats"], {"SLOPFAST_COUNT_CACHE": warm}),
                        "warm --budget": (budget, {"SLOPFAST_COUNT_CACHE": warm}),
                        "--stats": (["--stats"], off), "--budget": (budget, off)}
            times: dict[str, list[float]] = {k: [] for k in variants}
            rss: dict[str, int] = dict.fromkeys(variants, 0)
            for r in range(args.rounds + 1):
                for name, (extra, env) in variants.items():
                    if env is None:      # cold: a cache directory of its own
                        env = {"SLOPFAST_COUNT_CACHE": tempfile.mkdtemp(dir=tmp)}
                    wall, peak = run_command([args.slopfast, "aggregate", tree, "-o", out, "-q", *extra], env)
                    if r:
                        times[name].append(wall)
                        rss[name] = max(rss[name], peak)
            rows.append((tree, out, {k: statistics.median(v) for k, v in times.items()}, rss))
        # counted once every command has run: a child forked from a parent that holds tiktoken
        # and a document would report the parent's pages as its peak RSS
        for tree, out, med, rss in rows:
            counted = tiktoken_count(out)    # the last run of each tree was --budget
            ratio = {k: v / med["plain"] for k, v in med.items()}
            print(f"| {os.path.basename(tree.rstrip('/'))} | {med['plain']:.3f} s | {med['--tokens']:.3f} s "
                  f"| {med['--stats']:.3f} s | {med['--budget']:.3f} s | {ratio['--stats']:.2f} "
                  f"| {ratio['--budget']:.2f} | {ratio['1 --stats']:.2f}, {ratio['1 --budget']:.2f} "
                  f"| {ratio['cold --stats']:.2f}, {ratio['warm --stats']:.2f}; {ratio['warm --budget']:.2f} "
                  f"| {rss['plain'] // 1024} / {rss['--stats'] // 1024} / {rss['--budget'] // 1024} MiB | {counted:,} |")


if __name__ == "__main__":
    main()
