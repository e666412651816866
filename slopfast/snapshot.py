"""Snapshot serialization for undo history: msgpack (or JSON) of dataclasses.

    data = snapshot_serialize(state)                  # bytes, == msgspec.msgpack.encode(state)
    state2 = snapshot_deserialize(data, UiState)      # typed; SnapshotError on bad data
    history = SnapshotHistory(capacity=100, max_bytes=64 << 20)

Two paths give the same bytes (docs/snapshot.md):
- fallback: msgspec (slopfast.fallbacks.snapshot);
- native: Python flattens the object, guided by a per-class plan compiled once
  and cached, into a compact tape (codes, floats, UTF-8 text, raw bytes);
  lib/snapshot.c turns the tape into MessagePack in chunked output.
The dispatcher picks per SLOPFAST_BACKEND and measured speed. The native path
has no JSON and no decoder: those always run on msgspec (auto), and
SLOPFAST_BACKEND=native says so with an error instead of falling back.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import sys
from array import array
from typing import Any, Iterable, Type, TypeVar

from ._snapshot_plan import (
    INT_MIN, MISSING, UINT_MAX, UNSET, SnapshotError, class_plan, value_error,
)
from .fallbacks import snapshot as _fallback

__all__ = [
    "SnapshotError", "SnapshotHistory", "snapshot_serialize", "snapshot_serialize_many",
    "snapshot_deserialize", "DEFAULT_MAX_BYTES",
]

T = TypeVar("T")
FORMATS = ("msgpack", "json")
DEFAULT_MAX_BYTES = 64 << 20

# ---- native path: flatten to a tape -----------------------------------------

# Tape kinds (lib/snapshot.c TapeKind_*); a code is operand * 16 + kind.
_NIL, _TRUE, _FALSE, _INT, _INT64, _UINT64, _FLOAT, _STR, _BIN, _ARR, _MAP, _RAW = range(12)
_SMALL = 1 << 59           # |v| below this rides inline in the code
_TWO64 = 1 << 64
_MAGIC = b"SFT1"
_BIG_ENDIAN = sys.byteorder == "big"


class _Unsupported(Exception):
    """Raised inside the fast flatten; the slow walk then names the path."""


def _flatten(obj: Any) -> bytes:
    """One object -> one tape: header, codes (S8), floats (f64), text, bin.

    Strings are not encoded one by one: ASCII ones (the common case) go to a
    list joined and encoded once at the end; their byte length is len(s)."""
    codes: list[int] = []
    floats: list[float] = []
    text: list[str] = []
    bins: list[bytes] = []
    ca, fa, ta, ba = codes.append, floats.append, text.append, bins.append
    plans = _plans

    def emit(v: Any) -> None:
        t = type(v)
        if t is str:
            ca((len(v) if v.isascii() else len(v.encode())) << 4 | _STR)
            ta(v)
        elif t is int:
            if -_SMALL < v < _SMALL:
                ca(v << 4 | _INT)
            elif v < 0:
                if v < INT_MIN:
                    raise _Unsupported
                ca(_INT64)
                ca(v)
            elif v <= UINT_MAX:
                ca(_UINT64)
                ca(v - _TWO64 if v >> 63 else v)
            else:
                raise _Unsupported
        elif t is float:
            ca(_FLOAT)
            fa(v)
        elif v is None:
            ca(_NIL)
        elif t is bool:
            ca(_TRUE if v else _FALSE)
        elif t is list or t is tuple:
            ca(len(v) << 4 | _ARR)
            for x in v:
                if type(x) is str:
                    ca((len(x) if x.isascii() else len(x.encode())) << 4 | _STR)
                    ta(x)
                else:
                    emit(x)
        elif t is dict:
            emit_dict(v)
        else:
            plan = plans.get(t)
            if plan is not None:
                emit_dataclass(v, plan)
            else:
                emit_other(v, t)

    def emit_dict(v: dict) -> None:
        ca(len(v) << 4 | _MAP)
        for k, x in v.items():
            if type(k) is not str:
                raise _Unsupported
            ca((len(k) if k.isascii() else len(k.encode())) << 4 | _STR)
            ta(k)
            if type(x) is str:
                ca((len(x) if x.isascii() else len(x.encode())) << 4 | _STR)
                ta(x)
            else:
                emit(x)

    def emit_dataclass(v: Any, plan: Any) -> None:
        at = len(codes)
        ca(0)  # map header, patched once the present fields are counted
        n = 0
        d = v.__dict__ if plan.has_dict else None
        for name, key_code, key_raw, in_dict in plan.fields:
            x = d.get(name, MISSING) if in_dict else getattr(v, name, MISSING)  # type: ignore[union-attr]
            if x is MISSING or x is UNSET:
                continue
            n += 1
            ca(key_code)
            ba(key_raw)
            emit(x)
        codes[at] = n << 4 | _MAP

    def emit_other(v: Any, t: type) -> None:
        if isinstance(v, enum.Enum):
            emit(v.value)
        elif dataclasses.is_dataclass(t):
            plans[t] = plan = class_plan(t)
            emit_dataclass(v, plan)
        elif isinstance(v, (list, tuple)):
            emit(list(v))
        elif isinstance(v, dict):
            emit_dict(v)
        elif t is bytes or t is bytearray or t is memoryview:
            b = bytes(v)
            ca(len(b) << 4 | _BIN)
            ba(b)
        else:
            raise _Unsupported

    emit(obj)
    blob = "".join(text).encode()
    code_arr = array("q", codes)
    float_arr = array("d", floats)
    if _BIG_ENDIAN:
        code_arr.byteswap()
        float_arr.byteswap()
    head = _MAGIC + len(codes).to_bytes(4, "little") + len(floats).to_bytes(4, "little") + len(blob).to_bytes(8, "little")
    return b"".join((head, code_arr.tobytes(), float_arr.tobytes(), blob, *bins))


_plans: dict[type, Any] = {}


def tape(obj: Any) -> bytes:
    """The native tape of obj (exposed for tests); SnapshotError with a path."""
    try:
        return _flatten(obj)
    except (_Unsupported, UnicodeEncodeError, RecursionError, OverflowError) as ex:
        raise value_error(obj, ex) from None


def _native_encode_many(objs: Iterable[Any]) -> list[bytes]:
    from . import native, wire  # the binding loads the library on first use
    inputs = [wire.Input(b"", tape(o)) for o in objs]
    if not inputs:
        return []
    try:
        return native.run([("snapshot_encode", {})], inputs)
    except Exception as ex:
        if type(ex).__name__ == "PipelineError":
            raise SnapshotError(f"$: native snapshot encoder failed: {ex}") from ex
        raise


def native_encode(obj: Any) -> bytes:
    """MessagePack of obj on the native path (no dispatch)."""
    return _native_encode_many((obj,))[0]


# ---- dispatch ---------------------------------------------------------------

def _backend() -> str:
    return (os.environ.get("SLOPFAST_BACKEND") or "auto").strip().lower()


def _no_native(what: str) -> SnapshotError:
    return SnapshotError(f"$: SLOPFAST_BACKEND=native, but the native library has no {what}; "
                         "use SLOPFAST_BACKEND=auto or fallback (msgspec runs it)")


def _check_format(format: str) -> None:
    if format not in FORMATS:
        raise SnapshotError(f"$: unknown format {format!r} (expected 'msgpack' or 'json')")


_size_hint: dict[type, int] = {}


def snapshot_serialize(obj: Any, *, format: str = "msgpack") -> bytes:
    """Serialize a snapshot (a dataclass, or any supported value) to bytes.

    msgpack output is byte-identical to msgspec.msgpack.encode(obj) on both
    paths; json is msgspec.json's (fallback only). Unsupported types, ints
    outside -2**63 .. 2**64-1 and non-str dict keys raise SnapshotError with
    the path of the value (``$.discussion[3].role: unsupported type ...``)."""
    if format != "msgpack":
        _check_format(format)
        if _backend() == "native":
            raise _no_native("JSON encoder")
        return _fallback.encode(obj, format)
    from .dispatch import dispatch
    t = type(obj)
    size = _size_hint.get(t, 0)
    out = dispatch("snapshot_encode", size, lambda: native_encode(obj), lambda: _fallback.encode_msgpack(obj))
    if not size:
        _size_hint[t] = len(out)  # the size class of this type, learned once
    return out


def snapshot_serialize_many(objs: Iterable[Any], *, format: str = "msgpack") -> list[bytes]:
    """Serialize many snapshots; the native path sends them in one call."""
    objs = list(objs)
    if format != "msgpack":
        _check_format(format)
        if _backend() == "native":
            raise _no_native("JSON encoder")
        return [_fallback.encode(o, format) for o in objs]
    from .dispatch import dispatch
    size = sum(_size_hint.get(type(o), 0) for o in objs[:8]) * max(1, len(objs) // 8)
    return dispatch("snapshot_encode_many", size, lambda: _native_encode_many(objs),
                    lambda: [_fallback.encode_msgpack(o) for o in objs])


def snapshot_deserialize(data: bytes | bytearray | memoryview, type: Type[T], *, format: str = "msgpack") -> T:
    """Decode and validate bytes from snapshot_serialize into `type`.

    Truncated, corrupt or mistyped data raises SnapshotError with the path,
    e.g. ``$.discussion[3].role: expected str, got int``. Decoding always runs
    on msgspec (the native library has no decoder)."""
    _check_format(format)
    if _backend() == "native":
        raise _no_native("snapshot decoder")
    return _fallback.decode(data, type, format)


# ---- undo history -----------------------------------------------------------

class SnapshotHistory:
    """Undo/redo over serialized snapshots, bounded by count and by bytes.

    push(state) serializes and appends after the current entry, dropping any
    redo branch, then evicts the oldest entries while more than `capacity`
    are kept or their bytes exceed `max_bytes`. The entry just pushed is never
    evicted; a single snapshot larger than max_bytes is refused with
    SnapshotError and the history is left unchanged (keeping it would mean
    silently dropping all undo history for one oversized state).

    undo()/redo() move and return the now-current state, decoded into the
    type given (or the type of the first push); they raise IndexError when
    there is nothing to undo/redo. current() is None on an empty history."""

    def __init__(self, capacity: int = 100, max_bytes: int = DEFAULT_MAX_BYTES, *,
                 type: Any = None, format: str = "msgpack") -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        if max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")
        _check_format(format)
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.type = type
        self.format = format
        self._entries: list[bytes] = []
        self._pos = -1          # index of the current entry
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        """Bytes held by all entries."""
        return self._bytes

    @property
    def can_undo(self) -> bool:
        return self._pos > 0

    @property
    def can_redo(self) -> bool:
        return self._pos + 1 < len(self._entries)

    def push(self, state: Any) -> int:
        """Record a new current state; returns its serialized size."""
        data = snapshot_serialize(state, format=self.format)
        return self.push_bytes(data, type(state))

    def push_bytes(self, data: bytes, state_type: Any = None) -> int:
        """Record an already serialized state."""
        if len(data) > self.max_bytes:
            raise SnapshotError(f"$: snapshot of {len(data)} bytes exceeds the history's max_bytes={self.max_bytes}")
        if self.type is None and state_type is not None:
            self.type = state_type
        del self._entries[self._pos + 1:]   # a new branch drops the redo entries
        self._entries.append(bytes(data))
        self._bytes = sum(map(len, self._entries))
        drop = 0
        while len(self._entries) - drop > self.capacity or (self._bytes > self.max_bytes and drop < len(self._entries) - 1):
            self._bytes -= len(self._entries[drop])
            drop += 1
        del self._entries[:drop]
        self._pos = len(self._entries) - 1
        return len(data)

    def _load(self, i: int) -> Any:
        if self.type is None:
            raise SnapshotError("$: history has no type to decode into; pass type= to SnapshotHistory")
        return snapshot_deserialize(self._entries[i], self.type, format=self.format)

    def current(self) -> Any:
        """The current state (decoded), or None when the history is empty."""
        return None if self._pos < 0 else self._load(self._pos)

    def current_bytes(self) -> bytes | None:
        return None if self._pos < 0 else self._entries[self._pos]

    def undo(self) -> Any:
        if not self.can_undo:
            raise IndexError("nothing to undo")
        self._pos -= 1
        return self._load(self._pos)

    def redo(self) -> Any:
        if not self.can_redo:
            raise IndexError("nothing to redo")
        self._pos += 1
        return self._load(self._pos)

    def clear(self) -> None:
        self._entries.clear()
        self._pos = -1
        self._bytes = 0
