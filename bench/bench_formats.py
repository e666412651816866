"""Benchmark the aggregate formats against markdown: the cost of xml, json,
plain, line numbers, the tree and raw content on the same files.

    python bench/bench_formats.py [--quick] [--size BYTES]

About --size bytes (default 1 MB) of the rust-book corpus (tests/data), given in
memory and as paths on disk; each figure is the best of several rounds in which
every variant runs once (interleaved, so a busy machine slows them alike),
native and fallback forced with SLOPFAST_BACKEND: the ratios to markdown
compare like with like. A last row set is the same corpus with CRLF line
ends, the worst ordinary case for xml (each CR leaves a CDATA run). Prints a
markdown table (docs/benchmarks.md).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import slopfast  # noqa: E402
from bench_build_markdown import corpus_files, take  # noqa: E402
from slopfast import native  # noqa: E402

VARIANTS = [
    ("markdown", {}),
    ("xml", {"format": "xml"}),
    ("json", {"format": "json"}),
    ("plain", {"format": "plain"}),
    ("markdown, line numbers", {"line_numbers": True}),
    ("xml, line numbers", {"format": "xml", "line_numbers": True}),
    ("markdown, tree", {"tree": True}),
    ("markdown, raw", {"raw": True}),
]


def table(label: str, items, rounds: int, backends=("native", "fallback")) -> None:
    """Each variant once a round, `rounds` rounds, the best of each: the
    variants interleave, so a busy machine slows them alike."""
    best: dict[tuple[str, str], float] = {}
    for r in range(rounds):
        for backend in backends:
            os.environ["SLOPFAST_BACKEND"] = backend
            slopfast.build_markdown(items[:1], as_bytes=True)            # warm: the first call after a switch pays more
            for name, kwargs in VARIANTS[r % len(VARIANTS):] + VARIANTS[:r % len(VARIANTS)]:   # each its turn first
                start = time.perf_counter()
                slopfast.build_markdown(items, as_bytes=True, **kwargs)
                took = time.perf_counter() - start
                key = (backend, name)
                best[key] = min(best.get(key, took), took)
    for name, _ in VARIANTS:
        cells = [f"{best[(b, name)] * 1e3:.2f} ms | {best[(b, name)] / best[(b, 'markdown')]:.2f}x" for b in backends]
        print(f"| {label} | {name} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--size", type=int, default=1_000_000)
    args = parser.parse_args()
    repeat = 5 if args.quick else 20   # rounds
    os.environ["SLOPFAST_WISDOM"] = "off"
    items = take(corpus_files(), args.size)
    total = sum(len(d) for _, d in items)
    print(f"python {sys.version.split()[0]}, {native.version()}, {os.cpu_count()} cpus; "
          f"{total:,} bytes in {len(items)} files\n")
    print("| input | document | native | native / markdown | fallback | fallback / markdown |")
    print("|---|---|---:|---:|---:|---:|")
    table("in memory", items, repeat)
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for name, data in items:
            p = Path(tmp, name)
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
            paths.append(str(p))
        table("paths", paths, repeat)
    crlf = [(name, data.replace(b"\n", b"\r\n")) for name, data in items]
    table("in memory, CRLF", crlf, repeat)


if __name__ == "__main__":
    main()
