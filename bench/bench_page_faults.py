"""Page faults per build_markdown call, in memory (docs/benchmarks.md).

    python bench/bench_page_faults.py [--mb 1] [--backend native|fallback]
    GLIBC_TUNABLES=glibc.malloc.trim_threshold=268435456:glibc.malloc.mmap_threshold=268435456 \\
        python bench/bench_page_faults.py

Every native call takes fresh memory for its arena and response and frees it
at the end; with glibc's default policy the freed pages go back to the kernel
and fault in again on the next call. The second command keeps them.
"""
from __future__ import annotations

import argparse
import os
import resource
import time

from bench_build_markdown import corpus_files, take

import slopfast


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=float, default=1.0)
    parser.add_argument("--backend", default="native", choices=["native", "fallback"])
    parser.add_argument("--calls", type=int, default=100)
    args = parser.parse_args()
    os.environ["SLOPFAST_BACKEND"] = args.backend
    items = take(corpus_files(), int(args.mb * 1_000_000))
    for _ in range(3):
        slopfast.build_markdown(items, as_bytes=True)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t = time.perf_counter()
    for _ in range(args.calls):
        slopfast.build_markdown(items, as_bytes=True)
    elapsed = (time.perf_counter() - t) / args.calls
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / args.calls
    tunables = os.environ.get("GLIBC_TUNABLES", "(default)")
    print(f"{args.backend}, {args.mb:g} MB in memory, GLIBC_TUNABLES={tunables}: "
          f"{elapsed * 1e3:.3f} ms/call, {faults:.0f} minor faults/call")


if __name__ == "__main__":
    main()
