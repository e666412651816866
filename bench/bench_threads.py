"""Parallel speed-up of the native path: one large build_markdown split across
2 threads vs run in 1 (docs/benchmarks-threads.md).

    python bench/bench_threads.py [--mb 20] [--repeat 5] [--threads 2]

The content (MB megabytes: rust-book markdown, repeated) is in memory as
inline inputs. For each mode (full: mostly copying; summary: the CommonMark
outline of every file, CPU-bound) it times, best of REPEAT:

- `pipeline_run`: the request pre-encoded, only the ctypes call and
  pipeline_free timed (the C work; ctypes releases the GIL for it), fresh
  memory every call;
- `pipeline_run_in`: the same on one context per thread (memory kept
  between calls, as the binding does);
- `native.run`: end to end, encoding the request and copying the parts
  out in Python (those steps hold the GIL).

The input list is split in N requests. 1 thread runs the N requests one
after the other; N threads run one each, at the same time. Speed-up =
time(1 thread) / time(N threads): the same requests, so the same memory per
call, and only parallelism differs.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from slopfast import native, wire  # noqa: E402


def corpus(mb: int) -> list[wire.Input]:
    files = sorted((ROOT / "tests" / "data" / "rust-book").rglob("*.md"))
    docs = [(str(p.relative_to(ROOT)).encode(), p.read_bytes()) for p in files]
    out, total, i = [], 0, 0
    while total < mb << 20:
        path, data = docs[i % len(docs)]
        out.append(wire.Input(b"%d/%s" % (i // len(docs), path), data))
        total += len(data)
        i += 1
    return out


def timed_parallel(jobs: list, repeat: int) -> float:
    """Best wall time of running every job at once, one long-lived thread
    each (so per-thread state, like a thread's pipeline context, persists
    from round to round as it does in an application). A round lasts from the
    first job's start to the last job's end, as the workers clock them."""
    start, end = threading.Barrier(len(jobs)), threading.Barrier(len(jobs) + 1)
    spans: list[list[tuple[float, float]]] = [[] for _ in range(repeat)]

    def work(job):
        for r in range(repeat):
            start.wait()
            t0 = time.perf_counter()
            job()
            spans[r].append((t0, time.perf_counter()))
            end.wait()

    threads = [threading.Thread(target=work, args=(j,)) for j in jobs]
    for t in threads:
        t.start()
    for _ in range(repeat):
        end.wait()
    for t in threads:
        t.join()
    return min(max(e for _, e in span) - min(s for s, _ in span) for span in spans)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    lib = native._load()
    if lib is None:
        sys.exit(f"native library unavailable: {native.load_error()}")
    inputs = corpus(args.mb)
    size = sum(len(i.data) for i in inputs)
    n = args.threads
    chunks = [inputs[k::n] for k in range(n)]
    print(f"# {len(inputs)} inputs, {size / 1e6:.1f} MB; {os.cpu_count()} CPUs; {platform.python_implementation()} "
          f"{platform.python_version()}; {native.version()}")
    print(f"{'mode':8} {'path':15} {'1 thread':>10} {f'{n} threads':>10} {'speed-up':>9}")
    for mode in ("full", "summary"):
        ops = [("aggregate", {"mode": mode})]
        parts = [wire.encode_request(ops, c) for c in chunks]

        def raw(blob):
            return lambda: lib.free(lib.run(blob, len(blob)))

        def raw_in(blob):
            context = lib.context_new()   # one per job: a job runs on one thread at a time
            return lambda: lib.run_in(context, blob, len(blob))

        def e2e(chunk):
            return lambda: native.run(ops, chunk)

        def in_turn(jobs):
            return lambda: [job() for job in jobs]

        # check: the split gives the same sections as the whole
        doc = native.run(ops, inputs)[0]
        assert sum(len(native.run(ops, c)[0]) for c in chunks) + (n - 1) * len(b"\n\n---\n\n") == len(doc)
        for name, make, items in (("pipeline_run", raw, parts), ("pipeline_run_in", raw_in, parts),
                                  ("native.run", e2e, chunks)):
            one, many = [in_turn([make(i) for i in items])], [make(i) for i in items]
            t1 = timed_parallel(one, args.repeat)
            tn = timed_parallel(many, args.repeat)
            print(f"{mode:8} {name:15} {t1 * 1e3:8.1f}ms {tn * 1e3:8.1f}ms {t1 / tn:8.2f}x")


if __name__ == "__main__":
    main()
