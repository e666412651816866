"""Snapshot serialization for undo history: msgpack (or JSON) of dataclasses.

    data = snapshot_serialize(state)                  # bytes, == msgspec.msgpack.encode(state)
    state2 = snapshot_deserialize(data, UiState)      # typed; SnapshotError on bad data
    history = SnapshotHistory(capacity=100, max_bytes=64 << 20)

One implementation, msgspec, with the project's type rules and typed errors
(slopfast.fallbacks.snapshot; docs/snapshot.md). There is no native path and
no dispatch: a native encoder was measured 15-24x slower than msgspec (ctypes
cannot hand Python objects to C more cheaply than msgspec encodes them) and
removed, so SLOPFAST_BACKEND does not apply here.
"""

from __future__ import annotations

from typing import Any, Type, TypeVar

from .fallbacks import snapshot as _impl
from .fallbacks.snapshot import SnapshotError

__all__ = ["SnapshotError", "SnapshotHistory", "snapshot_serialize", "snapshot_deserialize", "DEFAULT_MAX_BYTES"]

T = TypeVar("T")
DEFAULT_MAX_BYTES = 64 << 20

# The hot path is msgspec's encoder itself, behind one set lookup by type:
# a root type is in CHECKED_ROOTS once its type hints were checked.
_encode = _impl.MSGPACK_ENCODE
_roots = _impl.CHECKED_ROOTS
_ENCODE_ERRORS = _impl.ENCODE_ERRORS


def snapshot_serialize(obj: Any, *, format: str = "msgpack") -> bytes:
    """Serialize a snapshot (a dataclass, or any supported value) to bytes.

    msgpack output is byte-identical to msgspec.msgpack.encode(obj), json to
    msgspec.json.encode(obj). Unsupported types (in type hints, or values
    msgspec cannot encode), ints outside -2**63 .. 2**64-1 and dict[K, V]
    hints with K other than str raise SnapshotError with the path
    (``$.discussion[3].role: unsupported type ...``)."""
    if format == "msgpack" and type(obj) in _roots:
        try:
            return _encode(obj)
        except _ENCODE_ERRORS as ex:
            raise _impl.value_error(obj, ex) from None
    return _impl.encode(obj, format)


def snapshot_deserialize(data: bytes | bytearray | memoryview, type: Type[T], *, format: str = "msgpack") -> T:
    """Decode and validate bytes from snapshot_serialize into `type`.

    Truncated, corrupt or mistyped data raises SnapshotError with the path,
    e.g. ``$.discussion[3].role: expected str, got int``."""
    return _impl.decode(data, type, format)


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
    there is nothing to undo/redo. current() is None on an empty history.

    push is O(1) amortized: the byte total is kept as entries come and go,
    and evicted entries are cut off the front of the list in batches."""

    def __init__(self, capacity: int = 100, max_bytes: int = DEFAULT_MAX_BYTES, *,
                 type: Any = None, format: str = "msgpack") -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        if max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")
        if format not in _impl.FORMATS:
            raise _impl._unknown_format(format)
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.type = type
        self.format = format
        # _entries[_first:] are the entries, oldest first; the slots before
        # _first were evicted (None) and are deleted once they are half the list
        self._entries: list[bytes | None] = []
        self._first = 0
        self._pos = -1          # index in _entries of the current entry
        self._bytes = 0         # sum of the lengths of the entries

    def __len__(self) -> int:
        return len(self._entries) - self._first

    @property
    def nbytes(self) -> int:
        """Bytes held by all entries."""
        return self._bytes

    @property
    def can_undo(self) -> bool:
        return self._pos > self._first

    @property
    def can_redo(self) -> bool:
        return self._pos + 1 < len(self._entries)

    def push(self, state: Any) -> int:
        """Record a new current state; returns its serialized size."""
        data = snapshot_serialize(state, format=self.format)
        return self.push_bytes(data, type(state))

    def push_bytes(self, data: bytes, state_type: Any = None) -> int:
        """Record an already serialized state; returns its size."""
        if type(data) is not bytes:
            data = bytes(data)
        size = len(data)
        if size > self.max_bytes:
            raise SnapshotError(f"$: snapshot of {size} bytes exceeds the history's max_bytes={self.max_bytes}")
        if self.type is None and state_type is not None:
            self.type = state_type
        entries = self._entries
        if self._pos + 1 < len(entries):        # a new branch drops the redo entries
            for old in entries[self._pos + 1:]:
                self._bytes -= len(old)          # type: ignore[arg-type]
            del entries[self._pos + 1:]
        entries.append(data)
        self._bytes += size
        first = self._first
        # evict the oldest; the new entry (the last) always stays
        while len(entries) - first > self.capacity or (self._bytes > self.max_bytes and first < len(entries) - 1):
            self._bytes -= len(entries[first])   # type: ignore[arg-type]
            entries[first] = None
            first += 1
        if first > 16 and 2 * first > len(entries):
            del entries[:first]
            first = 0
        self._first = first
        self._pos = len(entries) - 1
        return size

    def _load(self, i: int) -> Any:
        if self.type is None:
            raise SnapshotError("$: history has no type to decode into; pass type= to SnapshotHistory")
        return snapshot_deserialize(self._entries[i], self.type, format=self.format)  # type: ignore[arg-type]

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
        self._first = 0
        self._pos = -1
        self._bytes = 0
