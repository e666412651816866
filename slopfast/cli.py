"""The `slopfast` command: aggregate, bench, doctor (docs/cli.md).

Exit codes (all subcommands):
  0  success
  1  some input files could not be read (the document is still written)
  2  usage error (bad arguments, a PATH that does not exist)
  3  fatal: a forced native backend cannot load, the output cannot be
     written, a native/fallback mismatch, or any other error
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import sys
import time
from typing import Any, Callable, Iterator, Sequence, TextIO

from . import __version__
from . import aggregate as _aggregate
from . import dispatch, native
from .errors import BackendUnavailable, SlopfastError
from .walk import Found, Skipped, Unreadable, WalkOptions, compile_patterns, walk

EXIT_OK = 0
EXIT_UNREADABLE = 1
EXIT_USAGE = 2
EXIT_FATAL = 3

DEFAULT_MAX_FILE_SIZE = 10 << 20
PROGRESS_DELAY = 0.5      # seconds of a run before the progress line appears (terminal only)
PROGRESS_INTERVAL = 0.1   # seconds between progress updates


class UsageError(Exception):
    """A usage problem found after argument parsing (exit code 2)."""


# ---- small helpers ------------------------------------------------------------

_SIZE_RE = re.compile(r"^\s*(\d+)\s*([kKmMgG]?)(i?[bB])?\s*$")


def parse_size(text: str) -> int:
    """'4096', '512K', '10M', '1G' (binary multiples); 0 means no limit."""
    m = _SIZE_RE.match(text)
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (use e.g. 4096, 512K, 10M)")
    return int(m.group(1)) << {"": 0, "k": 10, "m": 20, "g": 30}[m.group(2).lower()]


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def _files(n: int) -> str:
    return f"{n} file{'s' * (n != 1)}"


def _say(message: str, stream: TextIO | None = None) -> None:
    stream = stream or sys.stderr
    print(f"slopfast: {message}", file=stream)


def _oserror_text(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


class Progress:
    """A one-line progress display on stderr: only on a terminal, only for long runs."""

    def __init__(self, stream: TextIO, *, delay: float | None = None, interval: float | None = None,
                 clock: Callable[[], float] = time.monotonic, enabled: bool | None = None):
        if enabled is None:
            try:
                enabled = stream.isatty()
            except (AttributeError, ValueError):
                enabled = False
        self.stream = stream
        self.enabled = enabled
        self.clock = clock
        self.start = clock()
        self.delay = PROGRESS_DELAY if delay is None else delay
        self.interval = PROGRESS_INTERVAL if interval is None else interval
        self.last = 0.0
        self.shown = False

    def update(self, text: str, *, force: bool = False) -> None:
        if not self.enabled:
            return
        now = self.clock()
        if now - self.start < self.delay or (not force and now - self.last < self.interval):
            return
        self.last = now
        self.shown = True
        self.stream.write("\r\x1b[K" + text)
        self.stream.flush()

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.shown = False

    def note(self, message: str) -> None:
        """A line of its own (a skip note) without garbling the progress line."""
        self.clear()
        _say(message, self.stream)


@contextlib.contextmanager
def observe_dispatch(log: list[tuple[str, int, str]]) -> Iterator[None]:
    """Record (op, size, backend) of every path the dispatcher runs meanwhile.

    Wraps slopfast.dispatch.dispatch for the duration; the decision itself
    is the dispatcher's (during calibration both paths run and both show)."""
    original = dispatch.dispatch

    def spy(op, size, native_fn, fallback_fn):
        def wrap(fn, name):
            if fn is None:
                return None

            def run():
                log.append((op, size, name))
                return fn()
            return run
        return original(op, size, wrap(native_fn, "native"), wrap(fallback_fn, "fallback"))

    # Modules that did `from .dispatch import dispatch` hold their own reference.
    bound = [m for name, m in list(sys.modules.items())
             if name.startswith("slopfast.") and m is not None and getattr(m, "dispatch", None) is original]
    dispatch.dispatch = spy
    for m in bound:
        m.dispatch = spy
    try:
        yield
    finally:
        dispatch.dispatch = original
        for m in bound:
            m.dispatch = original


def _decision(op: str, size: int) -> dict | None:
    """The dispatcher's recorded decision for op at this size, if any."""
    cls = dispatch.size_class(size)
    for row in dispatch.backend_report():
        if row["op"] == op and row["size_class"] == cls:
            return row
    return None


def backend_used(log: list[tuple[str, int, str]]) -> str:
    """A short account of which backend(s) ran, from an observe_dispatch log."""
    if not log:
        return "none (no input)"
    by_op: dict[str, set[str]] = {}
    sizes: dict[str, int] = {}
    for op, size, name in log:
        by_op.setdefault(op, set()).add(name)
        sizes[op] = size
    parts = []
    for op, names in by_op.items():
        if len(names) == 1:
            parts.append(f"{next(iter(names))} ({op})")
        else:
            row = _decision(op, sizes[op]) or {}
            parts.append(f"{row.get('backend', '?')} ({op}; both ran to calibrate)")
    return ", ".join(parts)


# ---- aggregate ----------------------------------------------------------------

def _cmd_aggregate(args: argparse.Namespace) -> int:
    for path in args.paths:
        if not os.path.lexists(path):
            raise UsageError(f"{path}: no such file or directory")
    if args.max_file_size == 0:
        args.max_file_size = None

    out_path = None if args.output in (None, "-") else args.output
    avoid = set()
    if out_path is not None:
        try:
            st = os.stat(out_path)
            avoid.add((st.st_dev, st.st_ino))
        except OSError:
            pass
    options = WalkOptions(
        hidden=args.hidden,
        gitignore=not args.no_gitignore,
        include=args.include,
        exclude=args.exclude,
        max_file_size=args.max_file_size,
        avoid=frozenset(avoid),
    )
    full = compile_patterns(args.full)

    t0 = time.perf_counter()
    progress = Progress(sys.stderr)
    items: list[Any] = []
    unreadable: list[tuple[str, BaseException]] = []
    n_skipped = 0
    in_bytes = 0
    for event in walk(args.paths, options):
        if isinstance(event, Found):
            in_bytes += event.size
            if full is not None and args.mode != "full" and full.match_file(event.rel):
                items.append({"path": event.path, "content": None, "mode": "full"})
            else:
                items.append(event.path)
            if progress.enabled:
                progress.update(f"slopfast: {_files(len(items))}, {human_bytes(in_bytes)}")
        elif isinstance(event, Skipped):
            n_skipped += 1
            if event.reason != "output":
                progress.note(f"skipped {event.path}: {event.detail}")
        elif isinstance(event, Unreadable):
            unreadable.append((event.path, event.error))
            progress.note(f"cannot read {event.path}: {_oserror_text(event.error)}")
    t_walk = time.perf_counter()

    progress.update(f"slopfast: building from {_files(len(items))}, {human_bytes(in_bytes)}…", force=True)
    log: list[tuple[str, int, str]] = []
    with observe_dispatch(log):
        result = _aggregate.build(items, mode=args.mode)
    t_build = time.perf_counter()
    progress.clear()

    document = result.document
    _write_output(document, out_path)   # plus a final newline when not empty

    for path, error in result.skipped:
        unreadable.append((path, error))
        _say(f"cannot read {path}: {_oserror_text(error)}")
    if args.verbose:
        n_files = len(items) - len(result.skipped)
        _say(
            f"{n_files} file{'s' * (n_files != 1)}, {human_bytes(in_bytes)} in, "
            f"{human_bytes(len(document) + bool(document))} out, {t_build - t0:.3f} s "
            f"(walk {t_walk - t0:.3f} s, build {t_build - t_walk:.3f} s); "
            f"{n_skipped} skipped, {len(unreadable)} unreadable; backend {backend_used(log)}"
        )
    return EXIT_UNREADABLE if unreadable else EXIT_OK


def _write_output(document: bytes, out_path: str | None) -> None:
    """The document and, when it is not empty, one newline (written apart: no copy of a big document)."""
    tail = b"\n" if document else b""
    if out_path is None:
        try:
            sys.stdout.buffer.write(document)
            sys.stdout.buffer.write(tail)
            sys.stdout.buffer.flush()
        except BrokenPipeError:
            # the reader went away (e.g. `| head`): end quietly
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return
    with open(out_path, "wb") as f:
        f.write(document)
        f.write(tail)


# ---- bench --------------------------------------------------------------------

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


class _Case:
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


_MD_SMALL = "# Title {i}\n\nText.\n"
_PY_SMALL = "def f{i}(a):\n    return a\n"


def _bench_build_markdown(size: int) -> Callable[[], Any]:
    file_size = min(size, 4096)
    n = max(1, size // file_size)
    body = _text_of_size(_PY_BLOCK, file_size, _PY_SMALL)
    items = [(f"src/pkg{i // 50}/mod{i}.py", body) for i in range(n)]
    return _Case(lambda: _aggregate.build(items).document, len(body.encode()) * n)


def _bench_md_outline(size: int) -> Callable[[], Any]:
    from .markdown import markdown_outline  # not available until the op lands
    text = _text_of_size(_MD_BLOCK, size, _MD_SMALL)
    return _Case(lambda: markdown_outline(text), len(text.encode()))


def _bench_py_skeleton(size: int) -> Callable[[], Any]:
    from .python_skeleton import summarise_python
    text = _text_of_size(_PY_BLOCK, size, _PY_SMALL)
    return _Case(lambda: summarise_python(text), len(text.encode()))


def _bench_snapshot(size: int) -> Callable[[], Any]:
    import dataclasses

    from .snapshot import snapshot_serialize

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
    return _Case(lambda: snapshot_serialize(state), size)   # ~size bytes of msgpack


BENCH_OPS: dict[str, Callable[[int], _Case]] = {
    "build_markdown": _bench_build_markdown,
    "md_outline": _bench_md_outline,
    "py_skeleton": _bench_py_skeleton,
    "snapshot": _bench_snapshot,
}
BENCH_SIZES = [100, 1 << 10, 16 << 10, 256 << 10, 2 << 20, 8 << 20]
BENCH_SIZES_QUICK = [100, 4 << 10, 64 << 10, 512 << 10]


@contextlib.contextmanager
def _backend_env(value: str | None) -> Iterator[None]:
    old = os.environ.get("SLOPFAST_BACKEND")
    if value is None:
        os.environ.pop("SLOPFAST_BACKEND", None)
    else:
        os.environ["SLOPFAST_BACKEND"] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("SLOPFAST_BACKEND", None)
        else:
            os.environ["SLOPFAST_BACKEND"] = old


MAX_CALL_S = 2.0   # a backend whose call would take longer than this is not run at that size


def _best_time(fn: Callable[[], Any], budget: float, max_reps: int = 1000) -> float:
    t0 = time.perf_counter()
    fn()  # warm up (plans, caches, library load)
    best = time.perf_counter() - t0
    if best > budget:
        return best   # slow enough that one call is the measurement
    start = time.perf_counter()
    for _ in range(max_reps):
        t0 = time.perf_counter()
        fn()
        t = time.perf_counter() - t0
        best = min(best, t)
        if time.perf_counter() - start > budget:
            break
    return best


def run_bench(quick: bool = False, ops: Sequence[str] | None = None,
              on_row: Callable[[dict], None] | None = None) -> list[dict]:
    """The benchmark matrix: one row per op and input size (or one 'not available' row per op)."""
    sizes = BENCH_SIZES_QUICK if quick else BENCH_SIZES
    budget = 0.03 if quick else 0.2
    setting = os.environ.get("SLOPFAST_BACKEND")
    rows = []
    last_time: dict[tuple[str, str], tuple[int, float]] = {}   # (op, backend) -> (size, seconds)
    for op in ops or BENCH_OPS:
        factory = BENCH_OPS[op]
        for size in sizes:
            row: dict[str, Any] = {"op": op, "size": size}
            try:
                case = factory(size)
            except (ImportError, AttributeError) as exc:
                row = {"op": op, "size": None, "available": False, "why": f"not available: {exc}"}
                rows.append(row)
                if on_row:
                    on_row(row)
                break
            row["available"] = True
            row["bytes"] = nbytes = case.nbytes
            fn = case.call
            for backend in ("native", "fallback"):
                prev = last_time.get((op, backend))
                if prev is not None and prev[1] * nbytes / prev[0] > MAX_CALL_S:
                    row[f"{backend}_s"] = None
                    row[f"{backend}_error"] = f"not run: about {prev[1] * nbytes / prev[0]:.0f} s a call"
                    continue
                try:
                    with _backend_env(backend):
                        row[f"{backend}_s"] = _best_time(fn, budget)
                    last_time[(op, backend)] = (nbytes, row[f"{backend}_s"])
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
            # What the dispatcher picks under this process's setting (auto by default).
            log: list[tuple[str, int, str]] = []
            if row["native_s"] is None or row["fallback_s"] is None:
                if any(str(row.get(f"{b}_error", "")).startswith("not run") for b in ("native", "fallback")):
                    row["pick"], row["why"] = "-", "not run (too slow at this size)"
                    rows.append(row)
                    if on_row:
                        on_row(row)
                    continue
            try:
                # As a fresh process would: decisions from the wisdom file, or measured now.
                dispatch.reset()
                with _backend_env(setting), observe_dispatch(log):
                    t0 = time.perf_counter()
                    fn()
                    if time.perf_counter() - t0 < budget:
                        fn()   # ops that learn their size class on a first call dispatch on it now
                picked = {name for _, _, name in log}
                decision = _decision(log[-1][0], log[-1][1]) if log else None
                forced = (setting or "auto").strip().lower()
                if forced in ("native", "fallback"):
                    row["pick"], row["why"] = forced, f"forced by SLOPFAST_BACKEND={forced}"
                elif decision is not None:
                    row["pick"], row["why"] = decision["backend"], decision.get("why", "")
                elif len(picked) == 1:
                    row["pick"] = next(iter(picked))
                    row["why"] = "no native path for this call" if row["pick"] == "fallback" else ""
                else:
                    row["pick"], row["why"] = "?", ""
                row["dispatch_op"] = log[-1][0] if log else None
            except (BackendUnavailable, SlopfastError) as exc:
                row["pick"], row["why"] = "error", str(exc)
            rows.append(row)
            if on_row:
                on_row(row)
    return rows


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


def _cmd_bench(args: argparse.Namespace) -> int:
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
        unknown = [op for op in ops if op not in BENCH_OPS]
        if unknown:
            raise UsageError(f"unknown op {', '.join(unknown)} (known: {', '.join(BENCH_OPS)})")
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


# ---- doctor -------------------------------------------------------------------

DOCTOR_OPS = {
    "build_markdown": ("slopfast.aggregate", "build_markdown"),
    "md_outline": ("slopfast.markdown", "markdown_outline"),
    "py_skeleton": ("slopfast.python_skeleton", "summarise_python"),
    "snapshot": ("slopfast.snapshot", "snapshot_serialize"),
}


def doctor_report() -> tuple[dict, list[str]]:
    """Everything `slopfast doctor` shows, and the problems that make it fail."""
    import importlib

    problems: list[str] = []
    info: dict[str, Any] = {
        "version": __version__,
        "package": os.path.dirname(os.path.abspath(__file__)),
        "python": f"{platform.python_implementation()} {platform.python_version()} ({sys.executable})",
        "machine": f"{platform.system()} {platform.machine()}",
    }
    lib = native.library_path()
    info["library"] = {"path": str(lib), "exists": lib.exists(), "from": "SLOPFAST_LIB" if os.environ.get("SLOPFAST_LIB") else "package"}
    binary = native.binary_path()
    info["pipeline_binary"] = {"path": str(binary), "exists": binary.exists()}
    try:
        info["transport"] = native.transport()
        info["native_available"] = native.available()
        info["native_error"] = native.load_error()
    except BackendUnavailable as exc:
        info["transport"] = None
        info["native_available"] = False
        info["native_error"] = str(exc)
        problems.append(str(exc))
    info["native_version"] = native.version()
    info["build_id"] = native.build_id()
    try:
        setting = dispatch.backend_setting()
    except BackendUnavailable as exc:
        setting = None
        problems.append(str(exc))
    info["backend"] = setting
    if setting == "native" and not info["native_available"]:
        problems.append(f"SLOPFAST_BACKEND=native, but {info['native_error']}")
    try:
        wisdom = dispatch.wisdom_path()
    except Exception as exc:  # platformdirs missing or broken
        wisdom = None
        info["wisdom_error"] = str(exc)
    info["wisdom"] = {
        "path": str(wisdom) if wisdom else None,
        "setting": os.environ.get("SLOPFAST_WISDOM", "") or "default",
        "exists": bool(wisdom and wisdom.exists()),
    }
    report = dispatch.backend_report()
    info["decisions"] = report
    ops = {}
    for op, (module, attr) in DOCTOR_OPS.items():
        try:
            mod = importlib.import_module(module)
            getattr(mod, attr)
        except (ImportError, AttributeError) as exc:
            ops[op] = {"available": False, "why": f"not available: {exc}"}
            continue
        if setting in ("native", "fallback"):
            why = f"forced by SLOPFAST_BACKEND={setting}"
            policy = setting
        elif not info["native_available"]:
            why = f"native unavailable: {info['native_error']}"
            policy = "fallback"
        else:
            rows = [r for r in report if r["op"].startswith(op.split("_")[0] if op == "snapshot" else op)]
            policy = "auto"
            why = (f"{len(rows)} size class(es) decided, see below" if rows
                   else "measured on first use per input-size class, then remembered")
        ops[op] = {"available": True, "backend": policy, "why": why}
    info["ops"] = ops
    # A quick self-check: both paths give the same bytes on a small input.
    if info["native_available"] and setting is not None:
        items = [("a.py", "def f():\n    return 1\n"), ("b.md", "# T\n\n```\nx\n```\n")]
        try:
            with _backend_env("native"):
                n = _aggregate.build(items).document
            with _backend_env("fallback"):
                f = _aggregate.build(items).document
            info["self_test"] = "ok: native == fallback (build_markdown)" if n == f else "MISMATCH"
            if n != f:
                problems.append("self-test: native and fallback build_markdown differ")
        except SlopfastError as exc:
            info["self_test"] = f"error: {exc}"
            problems.append(f"self-test failed: {exc}")
    else:
        info["self_test"] = "skipped (native unavailable)"
    info["problems"] = problems
    return info, problems


def _fmt_seconds(s: float | None) -> str:
    if s is None:
        return "-"
    return f"{s * 1e6:.1f} µs" if s < 1e-3 else f"{s * 1e3:.2f} ms" if s < 1 else f"{s:.2f} s"


def _cmd_doctor(args: argparse.Namespace) -> int:
    info, problems = doctor_report()
    if args.json:
        json.dump(info, sys.stdout, indent=1, default=str)
        print()
        return EXIT_FATAL if problems else EXIT_OK
    lib = info["library"]
    print(f"slopfast {info['version']}  ({info['package']})")
    print(f"python:     {info['python']}, {info['machine']}")
    print(f"library:    {lib['path']} ({'exists' if lib['exists'] else 'missing'}; from {lib['from']})")
    if info["native_version"]:
        print(f"native:     loaded: {info['native_version']}")
        print(f"build id:   {info['build_id']}")
    else:
        print(f"native:     unavailable: {info['native_error']}")
    print(f"transport:  {info['transport']} (SLOPFAST_TRANSPORT; pipeline binary {info['pipeline_binary']['path']}"
          f"{'' if info['pipeline_binary']['exists'] else ' missing'})")
    print(f"backend:    {info['backend']} (SLOPFAST_BACKEND={os.environ.get('SLOPFAST_BACKEND', '')!s})")
    w = info["wisdom"]
    if w["path"]:
        print(f"wisdom:     {w['path']} ({'exists' if w['exists'] else 'not written yet'}; SLOPFAST_WISDOM={w['setting']})")
    else:
        print(f"wisdom:     off (SLOPFAST_WISDOM={w['setting']}){' ' + info['wisdom_error'] if info.get('wisdom_error') else ''}")
    print("ops:")
    for op, o in info["ops"].items():
        if o["available"]:
            print(f"  {op:<15} {o['backend']:<9} {o['why']}")
        else:
            print(f"  {op:<15} {'-':<9} {o['why']}")
    if info["decisions"]:
        print("decisions (op, input size, backend, why, native vs fallback time):")
        for r in info["decisions"]:
            sizes = f"{human_bytes(r['bytes_from'])}..{human_bytes(r['bytes_to'])}"
            timing = ""
            if "native_s" in r or "fallback_s" in r:
                timing = f"native {_fmt_seconds(r.get('native_s'))} vs fallback {_fmt_seconds(r.get('fallback_s'))}"
            print(f"  {r['op']:<22} {sizes:<22} {r.get('backend', '?'):<9} {r.get('why', ''):<9} {timing}")
    else:
        print("decisions:  none yet")
    print(f"self-test:  {info['self_test']}")
    for p in problems:
        _say(f"problem: {p}")
    return EXIT_FATAL if problems else EXIT_OK


# ---- argument parsing -----------------------------------------------------------

EPILOG = "exit codes: 0 ok, 1 some files unreadable (output still written), 2 usage error, 3 fatal error"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="slopfast",
        description="Fast markdown context building (docs/cli.md).",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"slopfast {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    agg = sub.add_parser(
        "aggregate", help="many files into one markdown document",
        description="Walk PATHs (files or directories) and write one markdown document of their text files.",
        epilog=EPILOG,
    )
    agg.add_argument("paths", nargs="+", metavar="PATH", help="files or directories")
    agg.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout ('-': stdout)")
    agg.add_argument("--mode", choices=("full", "summary", "skeleton"), default="full",
                     help="how a file's content is shown (default full)")
    agg.add_argument("--full", action="append", default=[], metavar="GLOB",
                     help="files matching this gitignore-style pattern are shown in full whatever --mode says (repeatable)")
    agg.add_argument("--include", action="append", default=[], metavar="GLOB",
                     help="only files matching one of these patterns (repeatable)")
    agg.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                     help="leave out files and directories matching this pattern (repeatable)")
    agg.add_argument("--hidden", action="store_true", help="include hidden files and directories (.name; never .git)")
    agg.add_argument("--no-gitignore", action="store_true", help="do not honour .gitignore files")
    agg.add_argument("--max-file-size", type=parse_size, default=DEFAULT_MAX_FILE_SIZE, metavar="N",
                     help="skip files larger than N bytes (suffixes K, M, G; 0: no limit; default 10M)")
    agg.add_argument("-v", "--verbose", action="store_true", help="a summary line on stderr")
    agg.set_defaults(func=_cmd_aggregate)

    bench = sub.add_parser(
        "bench", help="native vs fallback throughput on generated data",
        description="Benchmark every available op, native vs fallback, over input sizes, "
                    "and show what the dispatcher picks.",
        epilog=EPILOG,
    )
    bench.add_argument("--quick", action="store_true", help="smaller inputs, shorter timings")
    bench.add_argument("--json", action="store_true", help="machine-readable output")
    bench.add_argument("--op", action="append", metavar="OP", help=f"only this op ({', '.join(BENCH_OPS)}; repeatable)")
    bench.add_argument("--plot", metavar="FILE.png", help="throughput vs input size per backend (needs slopfast[plot])")
    bench.set_defaults(func=_cmd_bench)

    doctor = sub.add_parser(
        "doctor", help="library, build, transport, backend decisions, wisdom file",
        description="Show how slopfast will run here; fails (exit 3) when a forced native backend cannot load.",
        epilog=EPILOG,
    )
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    doctor.set_defaults(func=_cmd_doctor)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit code (the console script exits with it)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:   # argparse: --help / --version (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"slopfast {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BackendUnavailable as exc:
        _say(f"error: {exc}")
        return EXIT_FATAL
    except BrokenPipeError:
        # the reader of a report went away (`slopfast doctor | head`): end quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (SlopfastError, OSError) as exc:
        _say(f"error: {exc}")
        return EXIT_FATAL
    except KeyboardInterrupt:
        return 130
