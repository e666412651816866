"""Benchmark: heading outlines, native vs markdown-it-py and other parsers.

    python bench/bench_md_outline.py [--repeat N] [--write docs/benchmarks-md_outline.md]

Every contender gets the same inputs in one run; each figure is the best of
N timed rounds (the machine is shared, the best round is the least
disturbed), and ratios are against the native path's best in the same run.

Contenders:
- native: slopfast.markdown_outline with SLOPFAST_BACKEND=native (wire
  encoding, the ctypes call and decoding included);
- native batch: one request carrying every document as an input (the C
  throughput with the per-call cost spread out);
- markdown-it-py full parse and block stage only (the fallback);
- mistune (AST renderer), pyromark (events), cmarkgfm (HTML: it has no
  outline API, so this is parse + render, a lower bound for it).
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
from pathlib import Path

from timing import best_of

ROOT = Path(__file__).resolve().parents[1]
TARGET_MBPS = 300
TARGET_RATIO = 50
DATA = ROOT / "tests" / "data"


def contenders(docs: list[bytes]):
    """name -> callable processing every document once."""
    from markdown_it import MarkdownIt

    from slopfast import md_outline as sm
    from slopfast import native
    from slopfast.fallbacks import md_outline as fb
    from slopfast.wire import Input

    texts = [d.decode("utf-8", "replace") for d in docs]
    full = MarkdownIt("commonmark")
    out = {}
    if native.available():
        def run_native():
            for d in docs:
                sm.markdown_outline(d)

        batch_inputs = [Input(b"<t>", d) for d in docs]

        def run_batch():
            for part in native.run([("md_outline", {})], batch_inputs):
                sm._decode_outline(part)

        def run_echo():
            for d in docs:
                native.run([("echo", {})], [Input(b"<t>", d)])

        out["native"] = run_native
        out["native batch"] = run_batch
        out["transport only (echo op, one call each)"] = run_echo
    out["markdown-it-py block"] = lambda: [fb.outline(t) for t in texts]
    out["markdown-it-py full"] = lambda: [fb.outline_tokens(full.parse(t)) for t in texts]
    try:
        import mistune

        ast = mistune.create_markdown(renderer=None)

        def run_mistune():
            for t in texts:
                [tok for tok in ast(t) if tok.get("type") == "heading"]

        out["mistune (ast)"] = run_mistune
    except ImportError:
        pass
    try:
        import pyromark

        def run_pyromark():
            for t in texts:
                [e for e in pyromark.events(t) if "Start" in e and isinstance(e["Start"], dict) and "Heading" in e["Start"]]

        out["pyromark (events)"] = run_pyromark
    except ImportError:
        pass
    try:
        import cmarkgfm

        out["cmarkgfm (html)"] = lambda: [cmarkgfm.markdown_to_html(t) for t in texts]
    except ImportError:
        pass
    return out


def workloads() -> dict[str, list[bytes]]:
    book = [p.read_bytes() for p in sorted((DATA / "rust-book").rglob("*.md"))]
    spec = (DATA / "commonmark" / "commonmark-spec-0.31.2.md").read_bytes()
    return {
        "rust-book, 478 files, one call each": book,
        "rust-book as one document": [b"\n".join(book)],
        "CommonMark spec (one document)": [spec],
        "spec, 200 B heads (x200)": [spec[i * 200 : (i + 1) * 200] for i in range(200)],
        "spec, 2 KB pieces (x50)": [spec[i * 2000 : (i + 1) * 2000] for i in range(50)],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5, help="timed rounds per contender (best is kept)")
    ap.add_argument("--write", type=Path, help="also write the markdown report here")
    args = ap.parse_args()
    os.environ["SLOPFAST_BACKEND"] = "native"

    lines = [
        f"Command: `python bench/bench_md_outline.py --repeat {args.repeat}"
        + (f" --write {args.write}`" if args.write else "`"),
        "",
        f"Date: {datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.system()}; other work may run concurrently (best of {args.repeat} rounds).",
        "",
        f"Targets: native >= {TARGET_MBPS} MB/s and >= {TARGET_RATIO}x markdown-it-py (checked per workload below "
        "against both the full parse and the block-only fallback).",
        "",
    ]
    verdicts = []
    for name, docs in workloads().items():
        size = sum(map(len, docs))
        lines += [f"### {name}: {size / 1e6:.2f} MB", "",
                  "| contender | ms | MB/s | time / native |", "|---|---:|---:|---:|"]
        times = {}
        for cname, fn in contenders(docs).items():
            fn()   # warm up (and let the dispatcher settle)
            times[cname] = best_of(fn, args.repeat)
        base = times.get("native")
        for cname, t in times.items():
            ratio = f"{t / base:.1f}x" if base else "-"
            lines.append(f"| {cname} | {t * 1e3:.2f} | {size / t / 1e6:.1f} | {ratio} |")
        lines.append("")
        print("\n".join(lines[-(len(times) + 4):]), flush=True)
        if base:
            mbps = size / base / 1e6
            full, block = times["markdown-it-py full"] / base, times["markdown-it-py block"] / base
            ok = lambda b: "met" if b else "**missed**"  # noqa: E731
            verdicts.append(f"- {name}: native {mbps:.0f} MB/s ({ok(mbps >= TARGET_MBPS)}); "
                            f"{full:.0f}x markdown-it-py full ({ok(full >= TARGET_RATIO)}), "
                            f"{block:.0f}x block-only ({ok(block >= TARGET_RATIO)}); native batch "
                            f"{size / times['native batch'] / 1e6:.0f} MB/s")
    lines += ["### Targets", ""] + verdicts + [""]
    lines += [
        "### Reading these figures", "",
        "- `native` is the public `markdown_outline` (forced native): Python API, wire encoding, the ctypes",
        "  call, the C parser, decoding. `native batch` sends every document in one request: closest to the",
        "  C parser's own speed. `transport only` is the `echo` op on the same inputs, one call each: the",
        "  fixed cost of a native call that every op pays (it also copies the input back, which `md_outline`",
        "  does not), so `native` minus it approximates parser + API cost.",
        "- On one large document (the spec, the rust-book as one file) the parser runs far above 300 MB/s",
        "  and far above 50x markdown-it-py. On many small documents, one call each, the fixed per-call cost",
        "  (several microseconds, in the shared transport, not in lib/md_outline.c) dominates: the rust-book",
        "  per file averages 5.8 KB, and the small `spec, 200 B` pieces are almost all per-call cost.",
        "- The machine is shared (2 cores, other builds and tests running): figures move by up to 2x between",
        "  runs; ratios within one run are more stable than absolute MB/s.",
        "",
    ]
    print("\n".join(verdicts))
    report = "\n".join(lines)
    if args.write:
        args.write.write_text("# Benchmark: markdown outline\n\n" + report + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
