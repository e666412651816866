"""Snapshot serialization for undo history: msgpack (or JSON) of dataclasses.

    data = snapshot_serialize(state)                  # bytes, == msgspec.msgpack.encode(state)
    state2 = snapshot_deserialize(data, UiState)      # typed; SnapshotError on bad data
    history = SnapshotHistory(capacity=100, max_bytes=64 << 20)

Two paths give the same bytes (docs/snapshot.md):
- fallback: msgspec (slopfast.fallbacks.snapshot);
- native: Python flattens the object, guided by a per-class plan compiled once
  and cached, into a compact tape (CPython's marshal v2 of a plain form);
  lib/snapshot.c turns the tape into MessagePack in chunked output. A value
  msgspec encodes natively beyond the documented type set (a set, a datetime,
  a UUID...) cannot go on the tape: such a snapshot is encoded by msgspec on
  this path too, so both paths agree on every object.
The dispatcher picks per SLOPFAST_BACKEND and measured speed. The native path
has no JSON and no decoder: those always run on msgspec (auto), and
SLOPFAST_BACKEND=native says so with an error instead of falling back.
"""

from __future__ import annotations

import dataclasses
import enum
import marshal
import os
import types
import typing
from typing import Any, Iterable, Type, TypeVar

import msgspec

from . import dispatch as _dispatch
from . import native as _native
from . import wire as _wire
from ._snapshot_plan import MISSING, UNSET, SnapshotError, class_plan, value_error
from .errors import BackendUnavailable, PipelineError
from .fallbacks import snapshot as _fallback

__all__ = [
    "SnapshotError", "SnapshotHistory", "snapshot_serialize", "snapshot_serialize_many",
    "snapshot_deserialize", "DEFAULT_MAX_BYTES",
]

T = TypeVar("T")
FORMATS = ("msgpack", "json")
DEFAULT_MAX_BYTES = 64 << 20

# ---- native path: flatten to a tape -----------------------------------------
#
# The tape is CPython's marshal format, version 2 (no back-references), of a
# "plain" form of the object: dataclasses become dicts of their present fields
# in field order (the same MessagePack as msgspec's dataclass encoding), enums
# their values, list/tuple/dict subclasses the base containers. marshal walks
# the plain form at C speed; lib/snapshot.c turns it into MessagePack.
# Per dataclass, a converter is compiled once from its type hints: one function
# per field that makes its value marshal-ready (and checks it: marshal writes
# any buffer object as bytes, where msgspec has its own rules).

_MAGIC = b"SFM2"
_OPS = [("snapshot_encode", {})]
_MARSHAL_VERSION = 2
_PLAIN_SCALARS = frozenset((str, int, float, bool, type(None), bytes))
# Scalar hints: their values only need an exact type check (a msgspec.Raw or
# another buffer object there would be written as bytes by marshal).
_PLAIN_HINTS = frozenset((str, int, float, bool, type(None), None, bytes))


class _Unsupported(Exception):
    """A value the native path cannot encode; value_error() names its path."""


def _to_plain(v: Any) -> Any:
    """Generic (slow) conversion by runtime type, mirroring msgspec's rules."""
    t = type(v)
    if t in _PLAIN_SCALARS:
        return v
    if t is list or t is tuple:
        return [_to_plain(x) for x in v]
    if t is dict:
        return {k: _to_plain(x) for k, x in v.items()}
    if isinstance(v, enum.Enum):
        return _to_plain(v.value)
    if dataclasses.is_dataclass(t):
        return _converter(t)(v, _to_plain)
    if isinstance(v, (list, tuple)):
        return [_to_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _to_plain(x) for k, x in v.items()}
    if t is bytearray or t is memoryview:
        return bytes(v)
    raise _Unsupported


def _is_plain_hint(tp: Any) -> bool:
    if tp in _PLAIN_HINTS:
        return True
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (list, tuple, dict, typing.Union, types.UnionType):
        return all(a is Ellipsis or _is_plain_hint(a) for a in args)
    return False


def _check_scalar(x: Any) -> Any:
    return x if type(x) in _PLAIN_SCALARS else _to_plain(x)


def _field_converter(tp: Any) -> Any:
    """The one-argument function that makes a field's value marshal-ready.
    Plain hints are checked too: a value that contradicts its hint (a buffer
    object, a msgspec.Raw where the hint says str) must reach msgspec's rules,
    not marshal's, which would write any buffer as bytes."""
    if tp in _PLAIN_HINTS:
        return _check_scalar
    if _is_plain_hint(tp):
        return _to_plain
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return lambda x: x.value if type(x) is tp and type(x.value) in _PLAIN_SCALARS else _to_plain(x)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return lambda x: _converter(tp)(x, None) if type(x) is tp else _to_plain(x)
    return _to_plain


_converters: dict[type, Any] = {}


def _converter(cls: type) -> Any:
    """The cached dataclass -> dict function of cls: conv(obj, force) where
    force (if not None) converts every field value instead of the plan's
    per-field converters."""
    conv = _converters.get(cls)
    if conv is not None:
        return conv
    plan = class_plan(cls)
    fields = tuple((name, in_dict, _field_converter(plan.hints.get(name, Any))) for name, in_dict in plan.fields)

    def conv(v: Any, force: Any) -> dict:
        d = v.__dict__ if plan.has_dict else None
        out = {}
        for name, in_dict, sub in fields:
            x = d.get(name, MISSING) if in_dict else getattr(v, name, MISSING)  # type: ignore[union-attr]
            if x is MISSING or x is UNSET:
                continue
            out[name] = force(x) if force is not None else sub(x)
        return out

    _converters[cls] = conv
    return conv


def tape(obj: Any) -> bytes:
    """The native tape of obj (exposed for tests); SnapshotError with a path."""
    try:
        t = type(obj)
        try:
            # a root that is not a dataclass has no hints: convert by runtime type
            plain = _converter(t)(obj, None) if t in _converters or dataclasses.is_dataclass(t) else _to_plain(obj)
            return _MAGIC + marshal.dumps(plain, _MARSHAL_VERSION)
        except ValueError:
            # a runtime value outside its hint (or in an Any slot) that marshal
            # cannot take as is: convert everything by runtime type
            return _MAGIC + marshal.dumps(_to_plain(obj), _MARSHAL_VERSION)
    except (_Unsupported, ValueError, RecursionError, OverflowError) as ex:
        raise value_error(obj, ex) from None


def _outside_tape(obj: Any) -> bytes:
    """obj holds a value the tape does not carry. msgspec encodes some types
    beyond the documented set natively (set, frozenset, datetime, date, time,
    timedelta, UUID, Decimal, non-str dict keys, msgspec types): for those the
    native path returns msgspec's bytes, so that both paths give the same
    result for every object; anything else is a SnapshotError with its path."""
    return _fallback.encode_msgpack(obj)


def _native_encode_many(objs: list[Any]) -> list[bytes]:
    out: list[Any] = [None] * len(objs)
    inputs, slots = [], []
    for i, o in enumerate(objs):
        try:
            t = tape(o)
        except SnapshotError:
            out[i] = _outside_tape(o)
            continue
        inputs.append(_wire.Input(b"", t))
        slots.append(i)
    if not inputs:
        return out
    try:
        parts = _native.run(_OPS, inputs)
    except PipelineError as ex:
        # the tape holds a value the C side refuses (an int beyond 64 bits, a
        # lone surrogate, a set in a field hinted as list...): find which
        # snapshot, then either msgspec's bytes or the path of the bad value
        if len(slots) > 1:
            parts = [_native_encode_many([objs[i]])[0] for i in slots]
        else:
            try:
                parts = [_outside_tape(objs[slots[0]])]
            except SnapshotError as err:
                raise err from ex
    for i, part in zip(slots, parts):
        out[i] = part
    return out


def native_encode(obj: Any) -> bytes:
    """MessagePack of obj on the native path (no dispatch)."""
    return _native_encode_many([obj])[0]


# ---- dispatch ---------------------------------------------------------------
#
# snapshot_serialize is called at UI speed on ~5 KB objects that msgspec
# encodes in a few microseconds, so the auto path must cost well under a
# microsecond once the dispatcher has decided. os.environ.get alone costs
# about 1 us (it encodes the key and decodes the value in Python), so the
# fast path reads the environment's underlying dict, and asks the
# dispatcher's decision table directly for the (op, size class) of this type.

_OP = "snapshot_encode"
try:
    _env_data = os.environ._data  # type: ignore[attr-defined]
    _ENV_KEY = os.environ.encodekey("SLOPFAST_BACKEND")  # type: ignore[attr-defined]
except AttributeError:  # not CPython's os._Environ: take the slow path always
    _env_data, _ENV_KEY = {"k": 1}, "k"
_decisions: dict = getattr(_dispatch, "_decisions", {})
_type_key: dict[type, tuple[str, int]] = {}   # type -> dispatcher key (op, size class)
_fast: dict[type, Any] = {}                     # type -> the encoder auto decided for
_dispatch.on_reset.append(_fast.clear)
# msgspec's own module-level encode: the very function a direct caller would
# use (same bytes as the fallback's Encoder; unsupported types are a TypeError
# either way, turned into a SnapshotError with the path by value_error)
_fb_encode = msgspec.msgpack.encode
_FB_ERRORS = _fallback._ENCODE_ERRORS


def _backend() -> str:
    return _dispatch.backend_setting()


def _no_native(what: str) -> BackendUnavailable:
    return BackendUnavailable(f"SLOPFAST_BACKEND=native, but the native library has no {what}; "
                              "use SLOPFAST_BACKEND=auto or fallback (msgspec runs it)")


def _check_format(format: str) -> None:
    if format not in FORMATS:
        raise SnapshotError(f"$: unknown format {format!r} (expected 'msgpack' or 'json')")


def snapshot_serialize(obj: Any, *, format: str = "msgpack") -> bytes:
    """Serialize a snapshot (a dataclass, or any supported value) to bytes.

    msgpack output is byte-identical to msgspec.msgpack.encode(obj) on both
    paths; json is msgspec.json's (fallback only). Unsupported types (in type
    hints, or values msgspec cannot encode), ints outside -2**63 .. 2**64-1
    and dict[K, V] hints with K other than str raise SnapshotError with the
    path (``$.discussion[3].role: unsupported type ...``)."""
    # the hot path: auto, decided for this type. One dict lookup by type
    # (hash by identity), one environment check; nothing else. _fast holds
    # the encoder the dispatcher picked, and is emptied by dispatch.reset().
    try:
        encode = _fast[type(obj)]
    except KeyError:
        return _serialize(obj, format)
    if format == "msgpack" and _ENV_KEY not in _env_data:
        try:
            return encode(obj)
        except SnapshotError:
            raise
        except _FB_ERRORS as ex:
            raise value_error(obj, ex) from None
    return _serialize(obj, format)


def _serialize(obj: Any, format: str) -> bytes:
    if format != "msgpack":
        _check_format(format)
        if _backend() == "native":
            raise _no_native("JSON encoder")
        return _fallback.encode(obj, format)
    t = type(obj)
    key = _type_key.get(t)
    if key is None:  # this type's size class, learned once from msgspec's output
        key = _type_key[t] = (_OP, _dispatch.size_class(len(_fallback.encode_msgpack(obj))))
    out = _dispatch.dispatch(_OP, 1 << (3 * key[1]), lambda: native_encode(obj),
                             lambda: _fallback.encode_msgpack(obj))
    if _ENV_KEY not in _env_data:  # auto: remember its decision for the hot path
        choice = _decisions.get(key)
        if choice is not None:
            _fast[t] = native_encode if choice else _fb_encode
    return out


def snapshot_serialize_many(objs: Iterable[Any], *, format: str = "msgpack") -> list[bytes]:
    """Serialize many snapshots; the native path sends them in one call."""
    objs = list(objs)
    if format != "msgpack":
        _check_format(format)
        if _backend() == "native":
            raise _no_native("JSON encoder")
        return [_fallback.encode(o, format) for o in objs]
    size = sum(len(snapshot_serialize(o)) for o in objs[:1]) * len(objs)
    return _dispatch.dispatch("snapshot_encode_many", size, lambda: _native_encode_many(objs),
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
