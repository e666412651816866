"""Per-call cost of a public op above the C call itself (docs/benchmarks.md).

    python bench/bench_call.py [--repeat N]

Layers, each timed on the same tiny document and on the rust-book's 1-8 KB
files (one call per file), best of N rounds:
- C call: pipeline_run_in through ctypes on a request encoded beforehand
  (the answer lands in the context's buffer: what no binding can avoid);
- run_blob: the same request through slopfast.native (transport check,
  per-thread context, the one response reader);
- native.run: plus encoding the request and the error check;
- markdown_outline, forced native: plus dispatch and decoding the records
  into Headings;
- markdown_outline, auto: what a caller gets (decided once, then one lookup).
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from timing import best_of

ROOT = Path(__file__).resolve().parents[1]


def small_docs() -> list[bytes]:
    docs = [p.read_bytes() for p in sorted((ROOT / "tests" / "data" / "rust-book").rglob("*.md"))]
    return [d for d in docs if 1024 <= len(d) <= 8192]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    os.environ["SLOPFAST_WISDOM"] = "off"
    import slopfast
    from slopfast import native, wire
    # auto's row times a decided dispatcher: with the fallback loaded, its
    # calibration budget measures on the first call (not after ~0.45 s of calls)
    import slopfast.fallbacks.md_outline  # noqa: F401

    lib = native._load()
    native.run_blob(wire.encode_request([], []))   # this thread's context, with its buffer
    context = native._thread.context.address
    tiny = b"# Title\n\nSome text.\n"
    docs = small_docs()
    total = sum(map(len, docs))

    def layers(items: list[bytes]):
        blobs = [wire.encode_request([("md_outline", {})], [wire.Input(b"<text>", d)]) for d in items]
        inputs = [[wire.Input(b"<text>", d)] for d in items]
        ops = [("md_outline", {})]

        def c_call():
            for b in blobs:
                lib.run_in(context, b, len(b))

        def run_blob():
            for b in blobs:
                native.run_blob(b)

        def run():
            for i in inputs:
                native.run(ops, i)

        def public():
            for d in items:
                slopfast.markdown_outline(d)

        return [("C call", c_call), ("native.run_blob", run_blob), ("native.run", run),
                ("markdown_outline, native", public), ("markdown_outline, auto", public)]

    for title, items in (("tiny document (%d B), per call" % len(tiny), [tiny]),
                         ("rust-book 1-8 KB files (%d files, %.0f KB), per file" % (len(docs), total / 1e3), docs)):
        print(f"\n{title}")
        runs = layers(items)
        best = {name: float("inf") for name, _ in runs}
        for _ in range(args.repeat):   # rounds interleave the layers: a slow spell hits them all
            for name, fn in runs:
                os.environ["SLOPFAST_BACKEND"] = "auto" if name.endswith("auto") else "native"
                fn()   # decided (auto) and warm
                best[name] = min(best[name], best_of(fn, 1, min_time=0.02) / len(items))
        base = best["C call"]
        for name, t in best.items():
            rate = sum(map(len, items)) / len(items) / t / 1e6
            print(f"  {name:<27} {t * 1e6:8.2f} us   +{(t - base) * 1e6:5.2f} us   {rate:8.1f} MB/s")


if __name__ == "__main__":
    main()
