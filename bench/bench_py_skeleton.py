"""Benchmark: Python skeletons, native (lib/py_skeleton.c) vs the ast fallback.

    python bench/bench_py_skeleton.py [--repeat N] [--write docs/benchmarks-py_skeleton.md]

Input: every .py file of this interpreter's standard library (the directory
sysconfig.get_paths()["stdlib"], recursively, test/ and lib2to3/ included,
site-packages excluded) that `ast` accepts, read into memory first. Each
figure is the best of N timed rounds (the machine is shared: the best round is
the least disturbed); ratios are against the native path in the same run.

Contenders:
- native: slopfast.summarise_python with SLOPFAST_BACKEND=native, one call per
  file (argument checks, wire encoding, the ctypes call and decoding included);
- native op: slopfast.native.run of the py_skeleton op, one call per file
  (the same without the public API's checks and the str decode);
- native batch: one request carrying every file as an input;
- fallback: slopfast.summarise_python with SLOPFAST_BACKEND=fallback, one call
  per file (ast.parse and the skeleton walk);
- ast.parse only: the floor under the fallback (parsing, no skeleton).

Then the same per file-size bucket (native and fallback, one call per file),
to show where the per-call cost of the native path decides.
"""
from __future__ import annotations

import argparse
import ast
import datetime
import os
import platform
import sys
import sysconfig
import warnings
from pathlib import Path

from timing import best_of

BUCKETS = [(0, 256), (256, 1 << 10), (1 << 10, 4 << 10), (4 << 10, 16 << 10), (16 << 10, 64 << 10),
           (64 << 10, 256 << 10), (256 << 10, 1 << 40)]


def stdlib_sources() -> tuple[list[bytes], int]:
    """The stdlib's .py files that ast accepts, and how many it rejects."""
    from slopfast.fallbacks import py_skeleton as fb

    root = Path(sysconfig.get_paths()["stdlib"])
    out, rejected = [], 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in sorted(root.rglob("*.py")):
            if path.relative_to(root).parts[0] in ("site-packages", "dist-packages") or not path.is_file():
                continue
            data = path.read_bytes()
            try:
                fb.check(data)
            except fb.SkeletonSyntaxError:
                rejected += 1
                continue
            out.append(data)
    return out, rejected


def contenders(docs: list[bytes], with_batch: bool = True):
    """name -> callable processing every document once."""
    import slopfast
    from slopfast import native
    from slopfast.wire import Input

    summarise = slopfast.summarise_python if hasattr(slopfast, "summarise_python") else None
    if summarise is None:
        from slopfast.py_skeleton import summarise_python as summarise

    def forced(backend):
        def run():
            os.environ["SLOPFAST_BACKEND"] = backend
            for d in docs:
                summarise(d)
        return run

    out = {}
    if native.available():
        out["native"] = forced("native")

        def run_op():
            for d in docs:
                native.run([("py_skeleton", {})], [Input(b"<source>", d)])

        out["native op"] = run_op
        if with_batch:
            inputs = [Input(b"<source>", d) for d in docs]
            out["native batch"] = lambda: native.run([("py_skeleton", {})], inputs)
    out["fallback"] = forced("fallback")
    return out


def parse_only(docs: list[bytes]):
    from slopfast.fallbacks import py_skeleton as fb

    texts = [fb.prepare(d).decode("utf-8") for d in docs]

    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for t in texts:
                ast.parse(t)

    return run


def fmt_size(n: int) -> str:
    if n >= 1 << 40:
        return "inf"
    if n >= 1 << 10:
        return f"{n >> 10} KB"
    return f"{n} B"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="timed rounds per contender (best is kept)")
    ap.add_argument("--write", type=Path, help="also write the markdown report here")
    args = ap.parse_args()
    from slopfast import native

    docs, rejected = stdlib_sources()
    size = sum(map(len, docs))
    cmd = "python bench/bench_py_skeleton.py" + (f" --repeat {args.repeat}" if args.repeat != 3 else "")
    lines = [
        f"Command: `{cmd}`",
        "",
        f"Date: {datetime.date.today().isoformat()}. Machine: {platform.machine()}, {os.cpu_count()} cores "
        f"(shared with other work), Python {platform.python_version()}, {platform.system()}; "
        f"best of {args.repeat} rounds.",
        "",
        f"Input: {len(docs)} files of the standard library at {sysconfig.get_paths()['stdlib']} "
        f"({size / 1e6:.1f} MB; {rejected} files ast rejects left out).",
        "",
        "### Whole standard library",
        "",
        "| contender | s | MB/s | time / native |",
        "|---|---:|---:|---:|",
    ]
    print("\n".join(lines), flush=True)
    times = {}
    runs = contenders(docs)
    runs["ast.parse only (not a contender)"] = parse_only(docs)
    for name, fn in runs.items():
        fn()   # warm up
        times[name] = best_of(fn, args.repeat)
        base = times.get("native")
        ratio = f"{times[name] / base:.2f}x" if base else "-"
        lines.append(f"| {name} | {times[name]:.3f} | {size / times[name] / 1e6:.1f} | {ratio} |")
        print(lines[-1], flush=True)
    if "native" in times:
        lines += ["", f"Fallback / native: **{times['fallback'] / times['native']:.1f}x** "
                      f"(native {size / times['native'] / 1e6:.0f} MB/s, fallback {size / times['fallback'] / 1e6:.1f} MB/s)."]
        print(lines[-1], flush=True)

    lines += ["", "### By file size (one call per file)", "",
              "| size | files | MB | native MB/s | native us/file | fallback MB/s | fallback us/file | fallback / native |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    print("\n".join(lines[-4:]), flush=True)
    for lo, hi in BUCKETS:
        bucket = [d for d in docs if lo <= len(d) < hi]
        if not bucket:
            continue
        bsize = sum(map(len, bucket))
        runs = contenders(bucket, with_batch=False)
        t = {}
        for name in ("native", "fallback"):
            if name in runs:
                runs[name]()
                t[name] = best_of(runs[name], args.repeat)
        n = len(bucket)
        nat = t.get("native")
        row = (f"| {fmt_size(lo)} - {fmt_size(hi)} | {n} | {bsize / 1e6:.2f} | "
               + (f"{bsize / nat / 1e6:.1f} | {nat / n * 1e6:.1f} | " if nat else "- | - | ")
               + f"{bsize / t['fallback'] / 1e6:.2f} | {t['fallback'] / n * 1e6:.0f} | "
               + (f"{t['fallback'] / nat:.1f}x |" if nat else "- |"))
        lines.append(row)
        print(row, flush=True)
    if not native.available():
        lines += ["", f"(native path unavailable: {native.load_error()})"]
    report = "\n".join(lines)
    if args.write:
        args.write.write_text("# Benchmark: Python skeletons\n\n" + report + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
