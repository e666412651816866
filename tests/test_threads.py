"""Threads: libchunks has no mutable global state, and ctypes releases the
GIL during pipeline_run, so many threads calling every op at once with
different inputs get exactly what serial calls get, and really run in
parallel (bench/bench_threads.py measures how much)."""
from __future__ import annotations

import ctypes
import json
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from slopfast import native, wire
from slopfast.wire import Input

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
THREADS = 8


def requests() -> list[bytes]:
    """Requests for every op (v3 and v1), each with its own inputs."""
    rng = random.Random(11)
    md = [p.read_bytes() for p in sorted((DATA / "rust-book" / "src").glob("ch0*.md"))[:24]]
    spec = [ex["markdown"].encode() for ex in json.loads((DATA / "commonmark" / "commonmark-spec-0.31.2.json").read_text())]
    py = [p.read_bytes() for p in sorted((ROOT / "slopfast").glob("*.py")) + sorted((ROOT / "fallbacks").glob("*.py"))]
    out = []
    for i in range(12):
        docs = [Input(b"d%d.md" % k, md[(i + k) % len(md)]) for k in range(3)]
        docs.append(Input(b"spec.md", b"".join(rng.sample(spec, 30))))
        srcs = [Input(b"m%d.py" % k, py[(i + k) % len(py)]) for k in range(2)]
        out += [
            wire.encode_request([("echo", {})], docs[:2] + srcs[:1]),
            wire.encode_request([("md_outline", {})], docs),
            wire.encode_request_text([("md_summary", {})], docs),
            wire.encode_request([("py_skeleton", {})], srcs),
            wire.encode_request([("aggregate", {"mode": ("full", "summary", "skeleton")[i % 3]})], docs + srcs),
            wire.encode_request([("md_outline", {}), ("py_skeleton", {}), ("echo", {})], [srcs[0]]) if i % 4 == 0
            else wire.encode_request([("aggregate", {})], [Input(b"x%d" % i, bytes(rng.randrange(256) for _ in range(5000)))]),
        ]
    return out


def test_the_library_is_called_without_the_gil(lib):
    """A CDLL function (not PyDLL): ctypes drops the GIL around the call."""
    assert not lib.run._flags_ & ctypes._FUNCFLAG_PYTHONAPI
    assert not lib.run_opts._flags_ & ctypes._FUNCFLAG_PYTHONAPI


def test_python_threads_run_during_a_long_native_call(lib):
    """While one thread is inside a ~100 ms pipeline_run, another keeps counting."""
    blob = wire.encode_request([("aggregate", {})], [Input(b"big%d" % i, b"x" * (1 << 20)) for i in range(48)])
    inside, done = threading.Event(), threading.Event()
    count = 0

    def counter():
        nonlocal count
        inside.wait()
        while not done.is_set():
            count += 1

    t = threading.Thread(target=counter)
    t.start()
    try:
        calls = 0
        start = time.perf_counter()
        while time.perf_counter() - start < 0.5 or calls < 3:
            inside.set()
            before = count
            lib.free(lib.run(blob, len(blob)))
            calls += 1
            if count - before > 1000:
                break
        else:
            pytest.fail(f"no progress in another thread during {calls} native calls")
    finally:
        done.set()
        inside.set()
        t.join()


def test_every_op_from_many_threads_matches_serial_calls(lib):
    reqs = requests()
    serial = [native.run_blob(r) for r in reqs]
    assert all(s.code == 0 for s in serial), [s.message for s in serial if s.code]
    work = list(range(len(reqs))) * 4
    random.Random(3).shuffle(work)
    with ThreadPoolExecutor(THREADS) as pool:
        got = list(pool.map(lambda i: native.run_blob(reqs[i]), work))
    for i, response in zip(work, got):
        assert response == serial[i], i


def test_threads_with_memory_caps_and_errors_mixed_in(lib):
    """Failing calls (caps, bad requests) interleaved with good ones do not disturb them."""
    reqs = requests()[:12]
    serial = [native.run_blob(r) for r in reqs]
    jobs = []
    for i, r in enumerate(reqs):
        jobs += [("ok", i), ("cap", i), ("bad", i)]
    random.Random(5).shuffle(jobs)

    def run(job):
        kind, i = job
        if kind == "ok":
            return native.run_blob(reqs[i])
        if kind == "cap":
            return native.run_blob_opts(reqs[i], memory_limit=1 << 12)
        return native.run_blob(reqs[i][: len(reqs[i]) // 2])

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(run, jobs * 3))
    for (kind, i), r in zip(jobs * 3, results):
        if kind == "ok":
            assert r == serial[i]
        elif kind == "cap":
            assert r == serial[i] or r.code == 6
        else:
            assert r.code != 0 and len(r.parts) == 1   # the error record
