"""Benchmark: exact token counts, native vs tiktoken's encode_ordinary, one core.

    python bench/bench_tokens.py [--repeat N] [--corpus stdlib|rust-book]...

Corpora: the standard library's .py files (site-packages left out, about
31 MB) and tests/data/rust-book (the markdown, about 2.8 MB). Each figure is
the best of N rounds over the whole corpus (the machine is shared: the best
round is the least disturbed), and every round checks that the counts are
equal. Times are CPU seconds of this process (time.process_time): on the
shared machine, wall time also counts the time other jobs hold the core.
Contenders:

- native batch: `count_tokens_many(texts)` forced native, one call for the
  corpus (wire encoding, the ranks table build and decoding included);
- native per file: `count_tokens(text)` forced native, one call per file
  (each call rebuilds the vocabulary table: the per-call cost);
- tiktoken: `len(enc.encode_ordinary(text))` per file, the fallback and the
  oracle, built from the same rank file (tiktoken's own threads are not used:
  one core).

The last column is the native call alone: the batch's request encoded once
beforehand, then only `pipeline_run_in` on it (native.run_blob), which is the
counter itself (lib/tokens.c) plus reading the request and writing 1,790 counts.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import sysconfig
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_RATIO, AIM_RATIO = 5, 20


def best_cpu(fn, repeat: int) -> float:
    """Best CPU seconds of fn() over `repeat` rounds."""
    best = float("inf")
    for _ in range(repeat):
        t = time.process_time()
        fn()
        best = min(best, time.process_time() - t)
    return best


def corpus(name: str) -> list[bytes]:
    if name == "stdlib":
        base = Path(sysconfig.get_paths()["stdlib"])
        files = sorted(p for p in base.rglob("*.py") if "site-packages" not in p.parts)
    else:
        files = sorted((ROOT / "tests" / "data" / "rust-book").rglob("*.md"))
    return [p.read_bytes() for p in files]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--corpus", action="append", choices=["stdlib", "rust-book"])
    ap.add_argument("--encoding", action="append", choices=["o200k_base", "cl100k_base"])
    args = ap.parse_args(argv)

    from slopfast import native, tokens
    from slopfast.fallbacks import tokens as fb

    def request_blob(datas: list[bytes], enc: str) -> bytes:
        """The batch's request, as count_tokens_many sends it (vocabulary attached)."""
        from slopfast import wire
        index = native.vocab_index(f"{enc}:None", lambda: tokens._ranks(enc).blob)
        return wire.encode_request([("tokens", {"encoding": enc, "vocab": str(index)})],
                                   [wire.Input(b"<text>", d) for d in datas])

    print(f"# {time.strftime('%Y-%m-%d')}, Python {platform.python_version()}, {platform.machine()}, "
          f"best of {args.repeat}")
    print("| corpus | encoding | MB | files | tokens | tiktoken MB/s | native batch MB/s | ratio | native per file MB/s | ratio "
          "| native call alone MB/s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for cname in args.corpus or ["stdlib", "rust-book"]:
        datas = corpus(cname)
        texts = [d.decode("utf-8", "replace") for d in datas]
        mb = sum(map(len, datas)) / 1e6
        for enc in args.encoding or ["o200k_base", "cl100k_base"]:
            ranks = tokens._ranks(enc)
            tk = fb.encoding(enc, lambda: ranks.ranks)
            want = [len(tk.encode_ordinary(t)) for t in texts]
            os.environ["SLOPFAST_BACKEND"] = "native"
            assert tokens.count_tokens_many(datas, enc) == want
            assert [tokens.count_tokens(d, enc) for d in datas[:50]] == want[:50]

            t_tik = best_cpu(lambda: [len(tk.encode_ordinary(t)) for t in texts], args.repeat)
            t_batch = best_cpu(lambda: tokens.count_tokens_many(datas, enc), args.repeat)
            t_each = best_cpu(lambda: [tokens.count_tokens(d, enc) for d in datas], args.repeat)
            blob = request_blob(datas, enc)
            t_call = best_cpu(lambda: native.run_blob(blob), args.repeat)
            del os.environ["SLOPFAST_BACKEND"]
            print(f"| {cname} | {enc} | {mb:.1f} | {len(datas)} | {sum(want):,} | {mb / t_tik:.1f} | "
                  f"{mb / t_batch:.1f} | **{t_tik / t_batch:.1f}x** | {mb / t_each:.1f} | {t_tik / t_each:.1f}x | "
                  f"{mb / t_call:.1f} |")
            sys.stdout.flush()
    print(f"\ntarget: native batch >= {TARGET_RATIO}x tiktoken (aim {AIM_RATIO}x), equal counts (checked)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
