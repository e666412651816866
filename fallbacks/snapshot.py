"""Snapshot serialization on msgspec: the fallback path and the reference.

encode(obj, fmt) / decode(data, tp, fmt) with fmt "msgpack" or "json". The
msgpack output is msgspec.msgpack.encode's, by definition; the native path
(lib/snapshot.c) must match it byte for byte. Errors become SnapshotError
with the path of the bad value first.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import msgspec

from slopfast._snapshot_plan import SnapshotError, check_type, decode_error, value_error

__all__ = ["encode", "decode", "encode_msgpack", "decode_msgpack"]


def _reject(obj: Any) -> Any:
    # msgspec calls this only for types it cannot encode itself
    raise TypeError(f"unsupported type {type(obj).__qualname__}")


_ENCODERS = {
    "msgpack": msgspec.msgpack.Encoder(enc_hook=_reject),
    "json": msgspec.json.Encoder(enc_hook=_reject),
}
_ENCODE_ERRORS = (TypeError, OverflowError, ValueError, UnicodeEncodeError, RecursionError)
_checked: set[type] = set()
_decoders: dict[tuple[Any, str], Any] = {}


def _check_root(cls: type) -> None:
    if dataclasses.is_dataclass(cls):
        check_type(cls)
    _checked.add(cls)


def encode_msgpack(obj: Any, _enc=_ENCODERS["msgpack"].encode) -> bytes:
    """The hot path: one set lookup, then msgspec."""
    if type(obj) not in _checked:
        _check_root(type(obj))
    try:
        return _enc(obj)
    except _ENCODE_ERRORS as ex:
        raise value_error(obj, ex) from None


def encode(obj: Any, fmt: str = "msgpack") -> bytes:
    if fmt == "msgpack":
        return encode_msgpack(obj)
    enc = _ENCODERS.get(fmt)
    if enc is None:
        raise SnapshotError(f"$: unknown format {fmt!r} (expected 'msgpack' or 'json')")
    if type(obj) not in _checked:
        _check_root(type(obj))
    try:
        return enc.encode(obj)
    except _ENCODE_ERRORS as ex:
        raise value_error(obj, ex) from None


def _decoder(tp: Any, fmt: str) -> Any:
    try:
        return _decoders[(tp, fmt)]
    except (KeyError, TypeError):
        pass
    if fmt not in ("msgpack", "json"):
        raise SnapshotError(f"$: unknown format {fmt!r} (expected 'msgpack' or 'json')")
    check_type(tp)
    mod = msgspec.msgpack if fmt == "msgpack" else msgspec.json
    try:
        dec = mod.Decoder(type=tp)
    except TypeError as ex:  # e.g. a union msgspec cannot tell apart
        raise SnapshotError(f"$: type {tp!r} cannot be decoded: {ex}") from None
    try:
        _decoders[(tp, fmt)] = dec
    except TypeError:
        pass
    return dec


def decode_msgpack(data: Any, tp: Any) -> Any:
    return decode(data, tp, "msgpack")


def decode(data: Any, tp: Any, fmt: str = "msgpack") -> Any:
    dec = _decoder(tp, fmt)
    try:
        return dec.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError) as ex:
        raise decode_error(ex) from None
    except UnicodeDecodeError as ex:
        raise SnapshotError(f"$: corrupt snapshot: a string is not valid UTF-8 ({ex.reason} at byte {ex.start})") from None
    except TypeError as ex:  # not a bytes-like object
        raise SnapshotError(f"$: cannot decode {type(data).__name__}: {ex}") from None
    except RecursionError:
        raise SnapshotError("$: nesting too deep") from None
