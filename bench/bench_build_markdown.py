"""Benchmark build_markdown: native vs fallback vs the files-to-prompt technique.

    python bench/bench_build_markdown.py [--quick]

Aggregates of about 1 KB, 100 KB, 1 MB and 10 MB made from the rust-book corpus
in tests/data, given in memory (path, content) and as paths on disk (files
written to a temporary directory), plus the round trip of a tiny request.
Each figure is the best of several repeats, all in one run, so the ratios
compare like with like. The "auto" column is build_markdown as shipped: the
dispatcher calibrates on the first call (not timed), then picks a backend for
the input's size class. Prints a markdown table (docs/benchmarks.md).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import timeit
from pathlib import Path

import slopfast
from slopfast import dispatch, native, wire

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "rust-book"


def corpus_files() -> list[tuple[str, bytes]]:
    return [(str(p.relative_to(CORPUS)), p.read_bytes()) for p in sorted(CORPUS.rglob("*.md"))]


def take(files: list[tuple[str, bytes]], target: int) -> list[tuple[str, bytes]]:
    """Files from the corpus (cycled, renamed) until about `target` bytes."""
    out, total, i = [], 0, 0
    while total < target:
        name, data = files[i % len(files)]
        if target < 4096:
            data = data[: target - total]
        out.append((f"r{i // len(files)}/{name}", data))
        total += len(data)
        i += 1
    return out


def best(fn, repeat: int) -> float:
    number = 1
    while True:
        t = timeit.timeit(fn, number=number)
        if t > 0.02 or number >= 1 << 16:
            break
        number *= 4
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number


def with_backend(name: str, fn):
    def run():
        os.environ["SLOPFAST_BACKEND"] = name
        return fn()
    return run


def files_to_prompt_technique(items_or_paths, from_disk: bool) -> str:
    """What files-to-prompt --markdown does per file: read text, pick a fence, write."""
    from files_to_prompt.cli import print_as_markdown

    out: list[str] = []
    for item in items_or_paths:
        if from_disk:
            with open(item) as f:
                path, content = item, f.read()
        else:
            path, content = item[0], item[1].decode()
        print_as_markdown(out.append, path, content, False)
    return "\n".join(out)


def crossover(files: list[tuple[str, bytes]], repeat: int) -> None:
    """Native vs fallback from 64 B to 1 MB in memory, and what auto picks."""
    print("\n| in memory, size | files | native | fallback | fallback / native | auto picks |")
    print("|---:|---:|---:|---:|---:|---|")
    for size in (64, 256, 1024, 4096, 16384, 65536, 262144, 1 << 20):
        items = take(files, size)
        build = lambda: slopfast.build_markdown(items, as_bytes=True)  # noqa: E731
        t_native = best(with_backend("native", build), repeat)
        t_fallback = best(with_backend("fallback", build), repeat)
        dispatch.reset()
        with_backend("auto", build)()
        picked = "/".join(sorted({r["backend"] for r in slopfast.backend_report()}))
        total = sum(len(d) for _, d in items)
        print(f"| {total:,} B | {len(items)} | {t_native * 1e6:.1f} µs | {t_fallback * 1e6:.1f} µs | "
              f"{t_fallback / t_native:.2f}x | {picked} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    repeat = 3 if args.quick else 7
    sizes = [1_000, 100_000, 1_000_000] + ([] if args.quick else [10_000_000])
    files = corpus_files()
    os.environ["SLOPFAST_WISDOM"] = "off"
    try:
        import files_to_prompt  # noqa: F401
        have_ftp = True
    except ImportError:
        have_ftp = False

    print(f"python {sys.version.split()[0]}, {native.version()}, {os.cpu_count()} cpus\n")
    print("| input | size | files | native | fallback | auto (picks) | files-to-prompt technique | fallback / native |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            items = take(files, size)
            total = sum(len(d) for _, d in items)
            paths = []
            for name, data in items:
                p = Path(tmp, f"s{size}", name)
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_bytes(data)
                paths.append(str(p))
            for label, arg in (("memory", items), ("disk", paths)):
                build = lambda: slopfast.build_markdown(arg, as_bytes=True)  # noqa: E731
                t_native = best(with_backend("native", build), repeat)
                t_fallback = best(with_backend("fallback", build), repeat)
                dispatch.reset()
                with_backend("auto", build)()          # calibration call
                picked = "/".join(sorted({r["backend"] for r in slopfast.backend_report()}))
                t_auto = best(with_backend("auto", build), repeat)
                t_ftp = best(lambda: files_to_prompt_technique(arg, label == "disk"), repeat) if have_ftp else float("nan")
                print(f"| {label} | {total / 1e6:.3f} MB | {len(items)} | {t_native * 1e3:.3f} ms | "
                      f"{t_fallback * 1e3:.3f} ms | {t_auto * 1e3:.3f} ms ({picked}) | {t_ftp * 1e3:.3f} ms | {t_fallback / t_native:.2f}x |")

    crossover(files, repeat)

    os.environ["SLOPFAST_BACKEND"] = "native"
    tiny = wire.encode_request([("echo", {})], [wire.Input(b"a", b"b")])
    lib = native._load()
    raw = lambda: lib.free(lib.run(tiny, len(tiny)))  # noqa: E731
    print("\n| tiny request (1 inline byte, echo op) | time |")
    print("|---|---:|")
    print(f"| pipeline_run + pipeline_free through ctypes, pre-encoded | {best(raw, repeat) * 1e6:.2f} µs |")
    context = lib.context_new()
    raw_in = lambda: lib.run_in(context, tiny, len(tiny))  # noqa: E731
    print(f"| pipeline_run_in on a context through ctypes, pre-encoded | {best(raw_in, repeat) * 1e6:.2f} µs |")
    lib.context_free(context)
    print(f"| native.run_blob (call + copy + decode response) | {best(lambda: native.run_blob(tiny), repeat) * 1e6:.2f} µs |")
    print(f"| native.run (encode + call + decode) | {best(lambda: native.run([('echo', {})], [wire.Input(b'a', b'b')]), repeat) * 1e6:.2f} µs |")
    one = [("a.py", "x")]
    print(f"| build_markdown of one 1-byte item, native | {best(lambda: slopfast.build_markdown(one), repeat) * 1e6:.2f} µs |")
    os.environ["SLOPFAST_BACKEND"] = "fallback"
    print(f"| build_markdown of one 1-byte item, fallback | {best(lambda: slopfast.build_markdown(one), repeat) * 1e6:.2f} µs |")


if __name__ == "__main__":
    main()
