"""Choosing native or fallback, per op, variant and input-size class.

SLOPFAST_BACKEND=native|fallback forces a path; auto (the default) measures.
A decision is keyed by what changes the cost: the op, its variant (the
parameters that change its work, e.g. aggregate's modes and whether it reads
files) and the size class of the input (powers of 8 bytes).

A call with no decision measures both paths when the op's calibration
budget pays for it, and otherwise runs native: calibration may cost an op at
most CALIBRATION_SHARE (10%) of the time its undecided calls have taken in
this process, plus CALIBRATION_ALLOWANCE_S. Measuring a fallback whose modules
are loaded is expected to cost MEASURE_ESTIMATE_S (the timed rounds), within
the allowance: such an op is measured on its first call. A fallback whose
modules (the call's `imports`) are not loaded yet also pays their import
(markdown-it-py about 40 ms, `ast` and the scanner port about 17 ms), counted
as IMPORT_ESTIMATE_S: native answers meanwhile, and the fallback is imported
and measured on the call where the budget has grown to pay for it (after
about 0.45 s of undecided calls). What a measurement really cost is charged
to the op's budget, so one that cost more than expected delays the next.
No decision is made or stored until both paths were measured (but where
native is unavailable: the fallback; and for a large input with no sampler:
native, assumed; neither is stored). The command's streams decide at their first batch, before they
have spent anything, so a summary or skeleton stream builds on native.

A measurement runs both paths on samples of the input (its first lines or
items: 1 KiB, then 4 and 16 KiB, stopping as soon as native is over twice as
fast; the whole input when it is smaller; a budget the last sample already
filled is skipped), both paths once as a warm-up, then
each timed in alternating rounds, at least CALIBRATION_MIN_ROUNDS and then
within CALIBRATION_BUDGET_S (a path's first calls may pay for memory it
keeps: a stream sample's second native call took 3x its third, and one
round sent a stream to the fallback, 2x slower); the caller's own
input runs on native once. The fallback wins only when it is faster by MARGIN
on the last sample: the native path's cost is linear in the input and the
fallback's may not be (a pathological markdown document costs markdown-it-py
n^1.6), so a near tie goes to native and never flips on noise. The decision --
the "wisdom" -- is stored in the user's cache directory, keyed by library
build id, Python version and machine, so later processes pay nothing.
SLOPFAST_WISDOM=off disables the file; SLOPFAST_WISDOM=PATH puts it
elsewhere. A wisdom file that is not exactly what this module writes is
ignored.

observe() records which paths run (for `slopfast aggregate -v` and
`slopfast bench`), without changing what the dispatcher decides.
"""
from __future__ import annotations

import math
import os
import sys
import threading
import time
from functools import partial

from . import _env
from . import native as _native
from ._cache_file import write_whole
from .errors import BackendUnavailable

TYPE_CHECKING = False   # typing.TYPE_CHECKING, without importing typing (its cost is start-up)
if TYPE_CHECKING:
    from typing import Any, Callable, TypeVar

    T = TypeVar("T")
    # A sampler: given a byte budget, (native on a sample, fallback on it, its bytes).
    Sampler = Callable[[int], "tuple[Callable[[], Any], Callable[[], Any], int]"]

SAMPLE_BYTES = 16 << 10
SAMPLE_STEPS = (1 << 10, 4 << 10, SAMPLE_BYTES)
CALIBRATION_BUDGET_S = 0.005
CALIBRATION_MIN_ROUNDS = 3
CALIBRATION_MAX_ROUNDS = 5
MARGIN = 0.2
CALIBRATION_SHARE = 0.1          # of the time an op's undecided calls took ...
CALIBRATION_ALLOWANCE_S = 0.010  # ... plus this, per op and process: what calibration may cost
MEASURE_ESTIMATE_S = CALIBRATION_BUDGET_S   # expected cost of measuring a loaded fallback
IMPORT_ESTIMATE_S = 0.050        # expected cost of a fallback's first import and run
WISDOM_VERSION = 3
_CLASS_SHIFT = 3  # size classes are powers of 8 bytes
_MAX_CLASS = 64 // _CLASS_SHIFT + 1

_backend_env = _env.reader("SLOPFAST_BACKEND")
_wisdom_env = _env.reader("SLOPFAST_WISDOM")
_decisions: dict[tuple[str, str, int], bool] = {}   # (op, variant, size class) -> use native
_report: dict[tuple[str, str, int], dict] = {}
_credit: dict[str, float] = {}    # op -> what its calibration may still cost, in seconds
_pending: set[tuple[str, str, int]] = set()     # decisions checked for and not made yet
_measuring: set[tuple[str, str, int]] = set()   # decisions being measured (by another thread)
_PENDING = {"backend": "native", "why": "pending: native until the calibration budget pays for measuring the fallback"}
_wisdom_loaded = False
_lock = threading.Lock()
_observers: list[list[tuple[str, int, str]]] = []   # the logs of the active observe() blocks


def size_class(size: int) -> int:
    return size.bit_length() // _CLASS_SHIFT


def size_class_range(cls: int) -> tuple[int, int]:
    """The [low, high) byte range of a size class."""
    low = 0 if cls == 0 else 1 << (cls * _CLASS_SHIFT - 1)
    return low, 1 << ((cls + 1) * _CLASS_SHIFT - 1)


def backend_setting() -> str:
    value = (_backend_env() or "auto").strip().lower() or "auto"
    if value not in ("auto", "native", "fallback"):
        raise BackendUnavailable(f"SLOPFAST_BACKEND={value!r}: expected auto, native or fallback")
    return value


def dispatch(op: str, size: int, native: Callable[[], T] | None, fallback: Callable[[], T], *,
             variant: str = "", sample: Callable[..., Any] | None = None, sample_of: Any = None,
             imports: tuple[str, ...] = ()) -> T:
    """Run `native` or `fallback` for a call of `op` on `size` bytes of input.

    `native=None` says the native path cannot serve this call. `variant`
    names the parameters that change the work (decisions are kept apart per
    variant). `sample(sample_of, budget)` gives (native on a sample, fallback
    on it, its bytes), a part of the input of at most `budget` bytes, for
    calibration (a function and its argument rather than a closure: nothing
    is built per call); without it an input larger than SAMPLE_BYTES is
    decided for native unmeasured. `imports`: the modules the fallback's
    first run imports (their cost waits for the calibration budget)."""
    if _observers:
        native, fallback = _observed(op, size, native, fallback)
    setting = _backend_env()
    if setting is None or setting == "auto":
        key = (op, variant, size.bit_length() // _CLASS_SHIFT)
        choice = _decisions.get(key)
        if choice is True:
            return native() if native is not None else fallback()
        if choice is False or native is None:
            return fallback()
        return _decide(op, key, size, native, fallback, sample, sample_of, imports)
    setting = backend_setting()
    if setting == "fallback":
        return fallback()
    if setting == "native":
        if native is None:
            raise BackendUnavailable(f"SLOPFAST_BACKEND=native, but {op} has no native path for this call")
        if not _native.available():
            raise BackendUnavailable(f"SLOPFAST_BACKEND=native, but {_native.load_error()}")
        return native()
    if native is None:
        return fallback()
    return _decide(op, (op, variant, size_class(size)), size, native, fallback, sample, sample_of, imports)


def observe() -> _Observe:
    """Record every path the dispatcher runs while the block is active.

    Yields a list that receives (op, size, backend) -- backend "native" or
    "fallback" -- each time dispatch() runs a path; a calibrating call runs
    both, several times, and each run is recorded. Process-wide: calls from
    every thread are recorded meanwhile. Blocks may nest (each log gets
    every entry). The dispatcher decides exactly as without it. Inactive, it costs
    dispatch() one check of a module-level list. Calibration's runs on a
    sample of a large input are not recorded (only the caller's input is)."""
    return _Observe()


class _Observe:
    """observe()'s block (a class: contextlib.contextmanager would import
    contextlib, 1-1.5 ms of every `slopfast aggregate`)."""

    def __enter__(self) -> list[tuple[str, int, str]]:
        self.log: list[tuple[str, int, str]] = []
        _observers.append(self.log)
        return self.log

    def __exit__(self, *exc: object) -> None:
        # by identity: logs with equal contents are still different blocks
        del _observers[next(i for i, o in enumerate(_observers) if o is self.log)]


def _observed(op: str, size: int, native: Callable[[], T] | None,
              fallback: Callable[[], T]) -> tuple[Callable[[], T] | None, Callable[[], T]]:
    """native and fallback, each recording its run in every active observe() log."""
    def wrap(fn: Callable[[], T], backend: str) -> Callable[[], T]:
        def run() -> T:
            for log in tuple(_observers):
                log.append((op, size, backend))
            return fn()
        return run

    return (None if native is None else wrap(native, "native")), wrap(fallback, "fallback")


def _decide(op: str, key: tuple[str, str, int], size: int, native: Callable[[], T], fallback: Callable[[], T],
            sample: Callable[..., Any] | None, sample_of: Any, imports: tuple[str, ...]) -> T:
    if key not in _pending:     # the checks that need making once per decision
        _load_wisdom()
        choice = _decisions.get(key)
        if choice is not None:
            return native() if choice else fallback()
        if not _native.available():
            _decisions[key] = False
            _report[key] = {"backend": "fallback", "why": f"native unavailable: {_native.load_error()}"}
            return fallback()
        if sample is None and size > SAMPLE_BYTES:
            _decisions[key] = True
            _report[key] = {"backend": "native", "why": "assumed: no sample to measure on"}
            return native()
        _pending.add(key)
        _report[key] = _PENDING
    credit = _credit.get(op, CALIBRATION_ALLOWANCE_S)
    if credit < MEASURE_ESTIMATE_S or key in _measuring or \
            (credit < MEASURE_ESTIMATE_S + IMPORT_ESTIMATE_S and not _loaded(imports)):
        t0 = time.perf_counter()
        try:
            return native()
        finally:
            _credit[op] = _credit.get(op, CALIBRATION_ALLOWANCE_S) + CALIBRATION_SHARE * (time.perf_counter() - t0)
    _measuring.add(key)
    t0 = time.perf_counter()
    try:
        if sample is None:      # the input is small enough to be its own sample
            timings, sample_bytes = _calibrate_on_samples(lambda _budget: (native, fallback, size))
        else:
            timings, sample_bytes = _calibrate_on_samples(partial(sample, sample_of))
    finally:
        _measuring.discard(key)
        _credit[op] = _credit.get(op, CALIBRATION_ALLOWANCE_S) - (time.perf_counter() - t0)
    native_s, fallback_s = timings
    use_native = fallback_s >= native_s * (1 - MARGIN)
    _decisions[key] = use_native
    _pending.discard(key)
    _report[key] = {"backend": "native" if use_native else "fallback", "why": "measured",
                    "native_s": native_s, "fallback_s": fallback_s, "sample_bytes": sample_bytes}
    _save_wisdom()
    return native()     # the caller's input runs on native, whatever was decided


def _loaded(modules: tuple[str, ...]) -> bool:
    loaded = sys.modules
    for name in modules:
        if name not in loaded:
            return False
    return True


def _calibrate(native: Callable[[], Any], fallback: Callable[[], Any]) -> tuple[float, float]:
    """Best-of time of each path, alternating which goes first, at least
    CALIBRATION_MIN_ROUNDS rounds, then within the budget."""
    best = [math.inf, math.inf]
    start = time.perf_counter()
    for round_ in range(CALIBRATION_MAX_ROUNDS):
        for i in ((1, 0) if round_ % 2 == 0 else (0, 1)):
            t0 = time.perf_counter()
            try:
                (native, fallback)[i]()
            except Exception:   # noqa: BLE001 - both paths give the same errors: an error is an answer
                pass
            best[i] = min(best[i], time.perf_counter() - t0)
        if round_ + 1 >= CALIBRATION_MIN_ROUNDS and time.perf_counter() - start > CALIBRATION_BUDGET_S:
            break
    return best[0], best[1]


def _calibrate_on_samples(sample: Sampler) -> tuple[tuple[float, float], int]:
    """Timings on samples growing by 4x up to SAMPLE_BYTES, stopping as soon as
    native wins clearly (the fallback over twice as slow): on an input the
    fallback handles badly, it runs on a kilobyte only. Both paths run once
    untimed on the first sample: a fallback's first run pays its imports
    (markdown-it-py, ast, tiktoken's tables: up to 0.3 s), which would
    otherwise count as its speed and send small inputs to native."""
    timings, sample_bytes = (math.inf, math.inf), 0
    for step, budget in enumerate(SAMPLE_STEPS):
        if step and budget <= sample_bytes:
            continue    # the last sample was this large already (files count 4 KiB each)
        native_on_sample, fallback_on_sample, size = sample(budget)
        if step and size == sample_bytes:
            break       # a sample that does not grow with the budget: it was all there is
        sample_bytes = size
        for warm in ((native_on_sample, fallback_on_sample) if step == 0 else (native_on_sample,)):
            try:
                warm()
            except Exception:   # noqa: BLE001 - an error is an answer too (the same on both paths)
                pass
        timings = _calibrate(native_on_sample, fallback_on_sample)
        if timings[1] > 2 * timings[0] or sample_bytes < budget:
            break
    return timings, sample_bytes


def line_sample(data: bytes, budget: int) -> bytes:
    """At most `budget` bytes of data, cut after a line end where there is one."""
    if len(data) <= budget:
        return data
    cut = data.rfind(b"\n", 0, budget)
    return data[: cut + 1] if cut > 0 else data[:budget]


# ---- wisdom -------------------------------------------------------------

def wisdom_key() -> str:
    """What the decisions hold for: the library build, transport, Python and
    machine. A checksum, not a hash (hashlib loads OpenSSL: 6 ms a run)."""
    import zlib

    try:
        machine, node = os.uname().machine, os.uname().nodename
    except AttributeError:   # Windows
        machine, node = os.environ.get("PROCESSOR_ARCHITECTURE", ""), os.environ.get("COMPUTERNAME", "")
    parts = "|".join([
        _native.build_id() or "no-native",
        _native.transport(),
        sys.implementation.name,
        ".".join(map(str, sys.version_info[:3])),
        machine,
        node,
    ]).encode("utf-8", "surrogateescape")
    return f"{zlib.crc32(parts):08x}{zlib.adler32(parts):08x}"


def user_cache_dir() -> str:
    """Where a user's caches go (the XDG base directory spec, the macOS and
    Windows conventions): a few lines instead of platformdirs, whose import
    cost 15 ms of every run."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.join(os.path.expanduser("~"), "AppData", "Local")
        return os.path.join(base, "slopfast", "Cache")
    if sys.platform == "darwin":
        return os.path.join(os.path.expanduser("~"), "Library", "Caches", "slopfast")
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "slopfast")


def wisdom_path() -> str | None:
    setting = (_wisdom_env() or "").strip()
    if setting.lower() in ("off", "0", "no", "false"):
        return None
    if setting:
        return setting
    return os.path.join(user_cache_dir(), f"wisdom-{wisdom_key()}.txt")


_WISDOM_MAX_BYTES = 1 << 20
_BACKENDS = ("native", "fallback")


# The wisdom file is text: a first line "slopfast-wisdom VERSION KEY", then a
# line per decision, its fields tab-separated (op, variant, size class,
# backend, native_s, fallback_s, sample_bytes; the timings as repr() of a
# float). Not JSON: importing json cost every `auto` run about 2.7 ms.

def _wisdom_header() -> str:
    return f"slopfast-wisdom {WISDOM_VERSION} {wisdom_key()}"


def _wisdom_line(op: str, variant: str, cls: int, info: dict) -> str:
    return "\t".join((op, variant, str(cls), info["backend"], repr(float(info["native_s"])),
                      repr(float(info["fallback_s"])), str(info["sample_bytes"])))


def _wisdom_text(decisions: list[tuple[str, str, int, dict]]) -> str:
    """What _save_wisdom writes for these decisions (those whose op or
    variant a line cannot hold are left out)."""
    lines = [_wisdom_header()]
    for op, variant, cls, info in decisions:
        if not any(c in field for field in (op, variant) for c in "\t\n\r"):
            lines.append(_wisdom_line(op, variant, cls, info))
    return "\n".join(lines) + "\n"


def _digits(text: str, most: int) -> bool:
    """ASCII digits, at most `most` of them (int() refuses over 4,300)."""
    return 0 < len(text) <= most and text.isascii() and text.isdigit()


def _wisdom_entry(line: str) -> tuple[tuple[str, str, int], dict] | None:
    """A decision's line exactly as _wisdom_line writes it, or None."""
    fields = line.split("\t")
    if len(fields) != 7:
        return None
    op, variant, cls_text, backend, native_text, fallback_text, sample_text = fields
    if backend not in _BACKENDS or not _digits(cls_text, 2) or not _digits(sample_text, 20):
        return None
    cls, sample_bytes = int(cls_text), int(sample_text)
    try:
        timings = float(native_text), float(fallback_text)
    except ValueError:
        return None
    if not (cls <= _MAX_CLASS and all(math.isfinite(t) and t >= 0 for t in timings)):
        return None
    info = {"backend": backend, "why": "wisdom", "native_s": timings[0], "fallback_s": timings[1],
            "sample_bytes": sample_bytes}
    if _wisdom_line(op, variant, cls, info) != line:
        return None     # another spelling of the numbers: not what we write
    return (op, variant, cls), info


def _load_wisdom() -> None:
    global _wisdom_loaded
    if _wisdom_loaded:
        return
    with _lock:
        _wisdom_loaded = True
        path = wisdom_path()
        if path is None:
            return
        try:
            with open(path, "rb") as f:
                data = f.read(_WISDOM_MAX_BYTES + 1)
            text = data.decode("utf-8")
        except (OSError, UnicodeDecodeError):
            return  # no file, or not ours: measure again
        lines = text.split("\n")
        if len(data) > _WISDOM_MAX_BYTES or lines[0] != _wisdom_header() or lines[-1] != "":
            return
        entries = [_wisdom_entry(line) for line in lines[1:-1]]
        if None in entries:
            return   # one line we did not write: the file is not ours
        keys = [key for key, _ in entries]
        if keys != sorted(set(keys)):
            return   # we write each decision once, in order
        for key, info in entries:
            _decisions.setdefault(key, info["backend"] == "native")
            _report.setdefault(key, info)


def _save_wisdom() -> None:
    path = wisdom_path()
    if path is None:
        return
    decisions = [(op, variant, cls, info) for (op, variant, cls), info in sorted(_report.items())
                 if info.get("why") in ("measured", "wisdom")]
    write_whole(path, _wisdom_text(decisions).encode("utf-8", "surrogatepass"))


def reset() -> None:
    """Forget every decision made in this process (wisdom is re-read on next use)."""
    global _wisdom_loaded
    with _lock:
        _decisions.clear()
        _report.clear()
        _credit.clear()
        _pending.clear()
        _measuring.clear()
        _wisdom_loaded = False


def backend_report() -> list[dict]:
    """Every decision this process made or loaded, with its timings, and a
    row for each op that has no native path by design."""
    from .ops import OPS

    _load_wisdom()
    rows = []
    for (op, variant, cls), info in sorted(_report.items()):
        low, high = size_class_range(cls)
        rows.append({"op": op, "variant": variant, "size_class": cls, "bytes_from": low, "bytes_to": high, **info})
    return rows + [{"op": op.name, "variant": "", "size_class": None, "bytes_from": 0, "bytes_to": None,
                    "backend": "fallback", "why": "no native path by design: one implementation"}
                   for op in OPS if op.op_id is None]
