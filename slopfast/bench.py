"""`slopfast bench`: each op's native path against its fallback on generated
data, over input sizes, and what the dispatcher picks (docs/cli.md).

The ops benchmarked are the rows of slopfast.ops.OPS with a `bench` name;
CASES holds one input generator per such name. Loaded only when the
subcommand runs (slopfast.cli imports it lazily).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from typing import Any, Callable, Sequence

import slopfast

from . import __version__, dispatch, native
from .cli import EXIT_FATAL, EXIT_OK, UsageError, _say, backend_env, decision, human_bytes, sole_path
from .errors import BackendUnavailable, SlopfastError
from .ops import BY_NAME, OPS, Op

# ---- generated inputs -----------------------------------------------------------

_MD_BLOCK = (
    "## Section {i}\n\nSome *emphasis*, a [link](https://example.com/{i}) and `code`.\n"
    "A second line of the paragraph with more words in it.\n\n"
    "- item one\n- item two\n  - nested item\n\n```python\ndef f{i}(x):\n    return x + {i}\n```\n\n"
    "> a quote\n\n"
)
_PY_BLOCK = (
    "class Thing{i}(Base):\n    \"\"\"Docstring of Thing{i}.\"\"\"\n\n    attr: int = {i}\n\n"
    "    def method(self, x: int, *args, key: str = 'v', **kw) -> int:\n"
    "        \"\"\"Do a thing.\"\"\"\n        total = 0\n        for n in range(x):\n"
    "            total += n * {i}\n        return total\n\n\n"
    "def helper_{i}(a, b=2):\n    return [a * b for _ in range(3)]\n\n\n"
)
_MD_SMALL = "# Title {i}\n\nText.\n"
_PY_SMALL = "def f{i}(a):\n    return a\n"


class Case:
    """One bench input: the call to time and the bytes it processes."""

    __slots__ = ("call", "nbytes")

    def __init__(self, call: Callable[[], Any], nbytes: int):
        self.call = call
        self.nbytes = nbytes


def _text_of_size(block: str, size: int, small: str) -> str:
    """Whole copies of `block` (numbered) up to at least `size` characters;
    copies of `small` instead when one block would be far too big."""
    unit = block if len(block.format(i=0)) <= size else small
    parts = []
    n = 0
    i = 0
    while n < size:
        chunk = unit.format(i=i)
        parts.append(chunk)
        n += len(chunk)
        i += 1
    return "".join(parts)


def _api(name: str) -> Callable[..., Any]:
    """A public function, through the package's (lazy) exports."""
    return getattr(slopfast, name)


def _bench_aggregate(size: int) -> Case:
    build_markdown = _api("build_markdown")
    file_size = min(size, 4096)
    n = max(1, size // file_size)
    body = _text_of_size(_PY_BLOCK, file_size, _PY_SMALL)
    items = [(f"src/pkg{i // 50}/mod{i}.py", body) for i in range(n)]
    return Case(lambda: build_markdown(items, as_bytes=True), len(body.encode()) * n)


def _bench_md_outline(size: int) -> Case:
    markdown_outline = _api("markdown_outline")
    text = _text_of_size(_MD_BLOCK, size, _MD_SMALL)
    return Case(lambda: markdown_outline(text), len(text.encode()))


def _bench_py_skeleton(size: int) -> Case:
    summarise_python = _api("summarise_python")
    text = _text_of_size(_PY_BLOCK, size, _PY_SMALL)
    return Case(lambda: summarise_python(text), len(text.encode()))


def _bench_snapshot(size: int) -> Case:
    import dataclasses

    snapshot_serialize = _api("snapshot_serialize")

    @dataclasses.dataclass
    class Message:
        role: str
        text: str
        tokens: int
        score: float
        tags: list

    @dataclasses.dataclass
    class State:
        title: str
        cursor: int
        messages: list

    per = 120
    n = max(1, size // per)
    state = State("bench", 7, [
        Message("user" if i % 2 else "assistant", f"message number {i} with some text", i, i / 3, ["a", "b"])
        for i in range(n)
    ])
    return Case(lambda: snapshot_serialize(state), size)   # ~size bytes of msgpack


# The input generator of each op, keyed by its registry row's `bench` name.
CASES: dict[str, Callable[[int], Case]] = {
    "aggregate": _bench_aggregate,
    "md_outline": _bench_md_outline,
    "py_skeleton": _bench_py_skeleton,
    "snapshot": _bench_snapshot,
}
BENCHED: tuple[Op, ...] = tuple(op for op in OPS if op.bench)   # `--op` takes their names
BENCH_SIZES = [100, 1 << 10, 16 << 10, 256 << 10, 2 << 20, 8 << 20]
BENCH_SIZES_QUICK = [100, 4 << 10, 64 << 10, 512 << 10]

# ---- timing ---------------------------------------------------------------------

MAX_CALL_S = 2.0   # a backend whose call would take longer than this is not run at that size


def _best_time(fn: Callable[[], Any], budget: float, max_reps: int = 1000) -> float:
    t0 = time.perf_counter()
    fn()  # warm up (plans, caches, library load, a fallback's imports: fallbacks load on first use)
    best = time.perf_counter() - t0
    if best > budget:
        t0 = time.perf_counter()
        fn()
        best = time.perf_counter() - t0
        if best > budget:
            return best   # slow enough that one call (after the first) is the measurement
    start = time.perf_counter()
    for _ in range(max_reps):
        t0 = time.perf_counter()
        fn()
        t = time.perf_counter() - t0
        best = min(best, t)
        if time.perf_counter() - start > budget:
            break
    return best


def _pick(row: dict, fn: Callable[[], Any], setting: str | None, budget: float) -> None:
    """What the dispatcher picks for this call under `setting`, into row["pick"], row["why"]."""
    try:
        # As a fresh process would: decisions from the wisdom file, or measured now.
        dispatch.reset()
        with backend_env(setting), dispatch.observe() as log:
            t0 = time.perf_counter()
            fn()
            if time.perf_counter() - t0 < budget:
                fn()   # ops that learn their size class on a first call dispatch on it now
        picked = {backend for _, _, backend in log}
        decided = decision(log[-1][0], log[-1][1]) if log else None
        forced = (setting or "auto").strip().lower()
        if forced in ("native", "fallback"):
            row["pick"], row["why"] = forced, f"forced by SLOPFAST_BACKEND={forced}"
        elif decided is not None:
            row["pick"], row["why"] = decided["backend"], decided.get("why", "")
        elif len(picked) == 1:
            row["pick"] = next(iter(picked))
            row["why"] = "no native path for this call" if row["pick"] == "fallback" else ""
        else:
            row["pick"], row["why"] = "?", ""
        row["dispatch_op"] = log[-1][0] if log else None
    except (BackendUnavailable, SlopfastError) as exc:
        row["pick"], row["why"] = "error", str(exc)


def run_bench(quick: bool = False, ops: Sequence[str] | None = None,
              on_row: Callable[[dict], None] | None = None) -> list[dict]:
    """The benchmark matrix: one row per op and input size (or one 'not available' row per op).

    `ops`: op names (rows of slopfast.ops.OPS with a bench case); default all of them."""
    sizes = BENCH_SIZES_QUICK if quick else BENCH_SIZES
    budget = 0.03 if quick else 0.2
    setting = os.environ.get("SLOPFAST_BACKEND")
    rows = []

    def emit(row: dict) -> None:
        rows.append(row)
        if on_row:
            on_row(row)

    last_time: dict[tuple[str, str], tuple[int, float]] = {}   # (op, backend) -> (size, seconds)
    for name in ops or [op.name for op in BENCHED]:
        spec = BY_NAME[name]
        factory = CASES[spec.bench]
        has_native = spec.op_id is not None
        for size in sizes:
            row: dict[str, Any] = {"op": name, "size": size}
            try:
                case = factory(size)
            except (ImportError, AttributeError) as exc:
                emit({"op": name, "size": None, "available": False, "why": f"not available: {exc}"})
                break
            row["available"] = True
            row["native_path"] = has_native
            row["bytes"] = nbytes = case.nbytes
            fn = case.call
            row["native_s"] = None
            for backend in ("native", "fallback") if has_native else ("fallback",):
                prev = last_time.get((name, backend))
                if prev is not None and prev[1] * nbytes / prev[0] > MAX_CALL_S:
                    row[f"{backend}_s"] = None
                    row[f"{backend}_error"] = f"not run: about {prev[1] * nbytes / prev[0]:.0f} s a call"
                    continue
                try:
                    with backend_env(backend):
                        row[f"{backend}_s"] = _best_time(fn, budget)
                    last_time[(name, backend)] = (nbytes, row[f"{backend}_s"])
                except (BackendUnavailable, SlopfastError) as exc:
                    row[f"{backend}_s"] = None
                    row[f"{backend}_error"] = str(exc)
            for backend in ("native", "fallback"):
                t = row[f"{backend}_s"]
                row[f"{backend}_bps"] = nbytes / t if t else None
            if row["native_s"] and row["fallback_s"]:
                row["ratio"] = row["fallback_s"] / row["native_s"]   # > 1: native faster
                row["faster"] = "native" if row["ratio"] > 1 else "fallback"
            else:
                row["ratio"] = None
                row["faster"] = "native" if row["native_s"] else "fallback" if row["fallback_s"] else None
            if not has_native:
                row["pick"], row["why"] = sole_path(spec), "no native path by design"
            elif (row["native_s"] is None or row["fallback_s"] is None) and any(
                    str(row.get(f"{b}_error", "")).startswith("not run") for b in ("native", "fallback")):
                row["pick"], row["why"] = "-", "not run (too slow at this size)"
            else:
                _pick(row, fn, setting, budget)
            emit(row)
    return rows


# ---- output -----------------------------------------------------------------------

def _fmt_rate(bps: float | None) -> str:
    return "-" if not bps else f"{bps / 1e6:10.1f}"


def _fmt_size(size: int) -> str:
    return human_bytes(size).replace(".0 ", " ")


def _bench_header() -> str:
    return f"{'op':<15} {'input':>9} {'native MB/s':>12} {'fallback MB/s':>14} {'native/fb':>10}  {'dispatcher picks':<17} why"


def _bench_line(row: dict) -> str:
    if not row.get("available"):
        return f"{row['op']:<15} {'-':>9} {row['why']}"
    ratio = f"{row['ratio']:9.2f}x" if row.get("ratio") else f"{'-':>10}"
    why = row.get("why", "")
    for backend in ("native", "fallback"):
        if row.get(f"{backend}_error") and not row.get(f"{backend}_s") and row[f"{backend}_error"] not in why:
            why = (why + "; " if why else "") + f"{backend}: " + row[f"{backend}_error"]
    return (f"{row['op']:<15} {_fmt_size(row['size']):>9} {_fmt_rate(row.get('native_bps')):>12} "
            f"{_fmt_rate(row.get('fallback_bps')):>14} {ratio}  {row.get('pick', '?'):<17} {why}")


def _plot(rows: list[dict], path: str, plt) -> None:
    ops = [op for op in dict.fromkeys(r["op"] for r in rows if r.get("available"))]
    fig, axes = plt.subplots(len(ops), 1, figsize=(7, 3.2 * max(1, len(ops))), squeeze=False)
    for ax, op in zip(axes[:, 0], ops):
        data = [r for r in rows if r["op"] == op and r.get("available")]
        for backend, style in (("native", "o-"), ("fallback", "s--")):
            pts = [(r["bytes"], r[f"{backend}_bps"] / 1e6) for r in data if r.get(f"{backend}_bps")]
            if pts:
                ax.plot(*zip(*pts), style, label=backend)
        for prev, cur in zip(data, data[1:]):
            if prev.get("ratio") and cur.get("ratio") and (prev["ratio"] > 1) != (cur["ratio"] > 1):
                ax.axvline((prev["bytes"] * cur["bytes"]) ** 0.5, color="grey", linestyle=":", label="crossover")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(op)
        ax.set_xlabel("input bytes")
        ax.set_ylabel("MB/s")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def command(args: argparse.Namespace) -> int:
    """`slopfast bench [--quick] [--json] [--op OP]… [--plot FILE.png]`."""
    plt = None
    if args.plot:
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            _say("--plot needs matplotlib: pip install 'slopfast[plot]'")
            return EXIT_FATAL
    ops = args.op or None
    if ops:
        known = [op.name for op in BENCHED]
        unknown = [op for op in ops if op not in known]
        if unknown:
            raise UsageError(f"unknown op {', '.join(unknown)} (known: {', '.join(known)})")
    if not args.json:
        print(f"slopfast {__version__} bench{' --quick' if args.quick else ''}: "
              f"{native.version() or 'native unavailable: ' + str(native.load_error())}, "
              f"transport {native.transport()}, SLOPFAST_BACKEND={os.environ.get('SLOPFAST_BACKEND', 'auto')}, "
              f"Python {platform.python_version()} on {platform.machine()}")
        print("best-of timings on generated in-memory data; native/fb > 1 means native is faster")
        print(_bench_header(), flush=True)
    rows = run_bench(args.quick, ops, on_row=None if args.json else lambda r: print(_bench_line(r), flush=True))
    if args.json:
        json.dump({
            "version": __version__,
            "native": native.version(),
            "native_error": native.load_error(),
            "transport": native.transport(),
            "backend_setting": os.environ.get("SLOPFAST_BACKEND", "auto"),
            "python": platform.python_version(),
            "machine": platform.machine(),
            "quick": args.quick,
            "rows": rows,
        }, sys.stdout, indent=1)
        print()
    if plt is not None:
        _plot(rows, args.plot, plt)
        _say(f"wrote {args.plot}")
    return EXIT_OK
