"""Choosing native or fallback, per op and input-size class.

SLOPFAST_BACKEND=native|fallback forces a path; auto (the default) measures.
The first call of an op in a size class with no stored decision runs both
paths on that very call (alternating, within about 100 ms), keeps the faster
and stores the decision -- the "wisdom" -- in the user's cache directory,
keyed by library build id, Python version and machine, so later processes
pay nothing. SLOPFAST_WISDOM=off disables the file; SLOPFAST_WISDOM=PATH
puts it elsewhere. A corrupt or unwritable wisdom file is ignored.

observe() records which paths run (for `slopfast aggregate -v` and
`slopfast bench`), without changing what the dispatcher decides.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, TypeVar

from . import _env
from . import native as _native
from .errors import BackendUnavailable

T = TypeVar("T")

CALIBRATION_BUDGET_S = 0.1
CALIBRATION_MAX_ROUNDS = 5
_CLASS_SHIFT = 3  # size classes are powers of 8 bytes

_backend_env = _env.reader("SLOPFAST_BACKEND")
_wisdom_env = _env.reader("SLOPFAST_WISDOM")
_decisions: dict[tuple[str, int], bool] = {}   # (op, size class) -> use native
_report: dict[tuple[str, int], dict] = {}
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


def dispatch(op: str, size: int, native: Callable[[], T] | None, fallback: Callable[[], T]) -> T:
    """Run `native` or `fallback` for a call of `op` on `size` bytes of input.

    `native=None` says the native path cannot serve this call."""
    if _observers:
        native, fallback = _observed(op, size, native, fallback)
    setting = _backend_env()
    if setting is None or setting == "auto":
        choice = _decisions.get((op, size.bit_length() // _CLASS_SHIFT))
        if choice is True:
            return native() if native is not None else fallback()
        if choice is False or native is None:
            return fallback()
        return _decide(op, size, native, fallback)
    setting = backend_setting()
    if setting == "fallback":
        return fallback()
    if setting == "native":
        if native is None:
            raise BackendUnavailable(f"SLOPFAST_BACKEND=native, but {op} has no native path for this call")
        if not _native.available():
            raise BackendUnavailable(f"SLOPFAST_BACKEND=native, but {_native.load_error()}")
        return native()
    return _decide(op, size, native, fallback) if native is not None else fallback()


@contextmanager
def observe() -> Iterator[list[tuple[str, int, str]]]:
    """Record every path the dispatcher runs while the block is active.

    Yields a list that receives (op, size, backend) -- backend "native" or
    "fallback" -- each time dispatch() runs a path; a calibrating call runs
    both, several times, and each run is recorded. Process-wide: calls from
    every thread are recorded meanwhile. Blocks may nest (each log gets
    every entry). The dispatcher decides exactly as without it; callers
    that bypass dispatch() once they know its decision (snapshot_serialize's
    per-type fast path, emptied by reset()) are not seen. Inactive, it costs
    dispatch() one check of a module-level list."""
    log: list[tuple[str, int, str]] = []
    _observers.append(log)
    try:
        yield log
    finally:
        # by identity: logs with equal contents are still different blocks
        del _observers[next(i for i, o in enumerate(_observers) if o is log)]


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


def _decide(op: str, size: int, native: Callable[[], T], fallback: Callable[[], T]) -> T:
    cls = size_class(size)
    _load_wisdom()
    choice = _decisions.get((op, cls))
    if choice is not None:
        return native() if choice else fallback()
    if not _native.available():
        _decisions[(op, cls)] = False
        _report[(op, cls)] = {"backend": "fallback", "why": f"native unavailable: {_native.load_error()}"}
        return fallback()
    result, native_s, fallback_s = _calibrate(native, fallback)
    use_native = native_s < fallback_s
    _decisions[(op, cls)] = use_native
    _report[(op, cls)] = {
        "backend": "native" if use_native else "fallback",
        "why": "measured",
        "native_s": native_s,
        "fallback_s": fallback_s,
    }
    _save_wisdom()
    return result


def _calibrate(native: Callable[[], T], fallback: Callable[[], T]) -> tuple[T, float, float]:
    """Best-of time of each path on the real call, alternating which goes first."""
    best = {native: float("inf"), fallback: float("inf")}
    start = time.perf_counter()
    result = None
    for round_ in range(CALIBRATION_MAX_ROUNDS):
        order = (native, fallback) if round_ % 2 == 0 else (fallback, native)
        for fn in order:
            t0 = time.perf_counter()
            result = fn()
            best[fn] = min(best[fn], time.perf_counter() - t0)
        if time.perf_counter() - start > CALIBRATION_BUDGET_S:
            break
    return result, best[native], best[fallback]


# ---- wisdom -------------------------------------------------------------

def wisdom_key() -> str:
    parts = [
        _native.build_id() or "no-native",
        _native.transport(),
        sys.implementation.name,
        ".".join(map(str, sys.version_info[:3])),
        platform.machine(),
        platform.node(),
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def wisdom_path() -> Path | None:
    setting = (_wisdom_env() or "").strip()
    if setting.lower() in ("off", "0", "no", "false"):
        return None
    if setting:
        return Path(setting)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("slopfast")) / f"wisdom-{wisdom_key()}.json"


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
            data = json.loads(path.read_text())
            if data.get("key") != wisdom_key():
                return
            for entry in data["decisions"]:
                key = (str(entry["op"]), int(entry["size_class"]))
                _decisions.setdefault(key, entry["backend"] == "native")
                _report.setdefault(key, {k: entry[k] for k in entry if k not in ("op", "size_class")} | {"why": "wisdom"})
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return  # no file, or corrupt: measure again


def _save_wisdom() -> None:
    path = wisdom_path()
    if path is None:
        return
    decisions = [
        {"op": op, "size_class": cls, **{k: v for k, v in info.items() if k != "why"}}
        for (op, cls), info in sorted(_report.items())
        if info.get("why") in ("measured", "wisdom")
    ]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as tmp:
            json.dump({"key": wisdom_key(), "decisions": decisions}, tmp, indent=1)
        os.replace(tmp.name, path)
    except OSError:
        try:
            os.unlink(tmp.name)  # type: ignore[possibly-undefined]
        except (OSError, NameError):
            pass


def reset() -> None:
    """Forget every decision made in this process (wisdom is re-read on next use)."""
    global _wisdom_loaded
    with _lock:
        _decisions.clear()
        _report.clear()
        _wisdom_loaded = False


def backend_report() -> list[dict]:
    """Every decision this process made or loaded, with its timings."""
    _load_wisdom()
    rows = []
    for (op, cls), info in sorted(_report.items()):
        low, high = size_class_range(cls)
        rows.append({"op": op, "size_class": cls, "bytes_from": low, "bytes_to": high, **info})
    return rows
