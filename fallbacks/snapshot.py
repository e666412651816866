"""Snapshot serialization on msgspec: the one implementation (docs/snapshot.md).

encode(obj, fmt) / decode(data, tp, fmt) with fmt "msgpack" or "json". The
msgpack output is msgspec.msgpack.encode's, by definition; there is no native
path (it was measured 15-24x slower than msgspec and removed). What this
module adds to msgspec is the project's type rules and typed errors:

- check_type: a dataclass's type hints are held to the supported set (and
  unions to those a typed decoder can tell apart), once per type, so nothing
  is written that snapshot_deserialize cannot read back;
- value_error: after msgspec refused a value, a slow walk finds its path
  (``$.discussion[3].role: unsupported type myapp.Opaque``); the fast path
  never carries a path around;
- decode_error: msgspec's decode errors with the path first
  (``$.discussion[3].role: expected str, got int``).

slopfast.snapshot (the public module) calls MSGPACK_ENCODE directly for root
types in CHECKED_ROOTS and comes here for everything else.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import types
import typing
import uuid
from typing import Any

import msgspec

from slopfast.errors import SlopfastError

__all__ = ["SnapshotError", "encode", "decode", "check_type", "value_error", "decode_error"]


class SnapshotError(SlopfastError, ValueError):
    """A snapshot cannot be serialized or deserialized; the message starts with
    the JSON-path-like location of the problem (``$.discussion[3].role``)."""


FORMATS = ("msgpack", "json")
INT_MIN = -(1 << 63)
UINT_MAX = (1 << 64) - 1

# ---- type hints: the supported set --------------------------------------------

_SCALARS = (type(None), bool, int, float, str, bytes)
_DYNAMIC = (typing.Any, object)
_UNION_ORIGINS = (typing.Union, types.UnionType)
_LIST_ORIGINS = (list, typing.List)
_TUPLE_ORIGINS = (tuple, typing.Tuple)
_DICT_ORIGINS = (dict, typing.Dict)
_CHECKED: set[Any] = set()   # type hints found supported


def _type_name(tp: Any) -> str:
    return getattr(tp, "__qualname__", None) or repr(tp)


def _check_enum(tp: type, path: str) -> None:
    for member in tp:  # type: ignore[var-annotated]
        value = member.value
        if type(value) not in (int, str) and not isinstance(value, (int, str)) or isinstance(value, bool):
            raise SnapshotError(f"{path}: enum {tp.__qualname__} has a member {member.name} whose value is "
                                f"{type(value).__name__}; only str and int values are supported")


def _check_dataclass(tp: type, path: str, seen: set) -> None:
    try:
        hints = typing.get_type_hints(tp)
    except Exception as ex:  # unresolvable forward reference and the like
        raise SnapshotError(f"{path}: cannot resolve the type hints of {tp.__qualname__}: {ex}") from None
    for f in dataclasses.fields(tp):
        _check(hints.get(f.name, Any), f"{path}.{f.name}", seen)


def _union_name(tp: Any) -> str:
    return " | ".join(_type_name(a) if a is not type(None) else "None" for a in typing.get_args(tp))


def _check_union_decodable(tp: Any, path: str) -> None:
    """A union must be one the typed decoder can tell apart (at most one
    dataclass/dict-like, one array-like, ... member): refuse it at encode time
    too, so that nothing is written that snapshot_deserialize cannot read."""
    try:
        msgspec.msgpack.Decoder(tp)
    except TypeError as ex:
        why = str(ex).split(" - type ", 1)[0]
        raise SnapshotError(f"{path}: unsupported union {_union_name(tp)}: {why}") from None
    except Exception:  # e.g. an unresolvable forward reference inside: checked elsewhere
        pass


def _check(tp: Any, path: str, seen: set) -> None:
    if tp in _CHECKED or tp in _DYNAMIC or tp is None or tp in _SCALARS:
        return
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _check_enum(tp, path)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if tp in seen:
            return  # recursive type: checked higher up
        seen.add(tp)
        return _check_dataclass(tp, path, seen)
    if tp in (list, tuple, dict):
        return
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in _UNION_ORIGINS:
        for arg in args:
            _check(arg, path, seen)
        _check_union_decodable(tp, path)
        return
    if origin in _LIST_ORIGINS and len(args) == 1:
        return _check(args[0], f"{path}[]", seen)
    if origin in _TUPLE_ORIGINS:
        for arg in args:
            if arg is not Ellipsis:
                _check(arg, f"{path}[]", seen)
        return
    if origin in _DICT_ORIGINS and len(args) == 2:
        if args[0] is not str:
            raise SnapshotError(f"{path}: dict keys must be str, not {_type_name(args[0])}")
        return _check(args[1], f"{path}[]", seen)
    raise SnapshotError(f"{path}: unsupported type {_type_name(tp)} (supported: dataclasses, None, bool, int, "
                        "float, str, bytes, list, tuple, dict with str keys, Optional/Union of these, Enum)")


def check_type(tp: Any, path: str = "$") -> None:
    """Raise SnapshotError naming the first field whose type hint is unsupported.
    Successful checks are cached, so a type costs once per process."""
    if tp in _CHECKED:
        return
    _check(tp, path, set())
    try:
        _CHECKED.add(tp)
    except TypeError:  # unhashable typing construct: just don't cache
        pass


# ---- the path of a bad value (slow path, after msgspec refused it) -------------

_MISSING = object()
# Types msgspec encodes natively beyond the documented set: values of them (in
# Any slots) are encoded as msgspec encodes them, so they are never the problem.
_MSGSPEC_EXTRA_VALUES = (datetime.datetime, datetime.date, datetime.time, datetime.timedelta, uuid.UUID,
                         decimal.Decimal, msgspec.Raw, msgspec.msgpack.Ext, msgspec.Struct)


def _encoded_fields(v: Any) -> typing.Iterator[tuple[str, Any]]:
    """(name, value) of the dataclass fields msgspec encodes, in order: a slot
    is read with getattr, any other field from the instance __dict__ (a field
    with only a class-level default is skipped, as msgspec skips it), and a
    missing or UNSET value is left out."""
    cls = type(v)
    slots: set[str] = set()
    for k in cls.__mro__:
        s = vars(k).get("__slots__", ())
        slots.update((s,) if isinstance(s, str) else s)
    d = getattr(v, "__dict__", None)
    for f in dataclasses.fields(cls):
        x = d.get(f.name, _MISSING) if d is not None and f.name not in slots else getattr(v, f.name, _MISSING)
        if x is not _MISSING and x is not msgspec.UNSET:
            yield f.name, x


def _value_problem(v: Any, path: str, depth: int) -> tuple[str, str] | None:
    """(path, reason) of the first value msgspec cannot encode, by msgspec's
    rules: exact scalar types (a str subclass is unsupported), list/tuple/dict
    subclasses accepted, an Enum encodes as its value, sets and msgspec's other
    native types accepted; ints within 64 bits, strings encodable as UTF-8."""
    if depth > 1000:
        return path, "nesting deeper than 1000 levels"
    t = type(v)
    if v is None or t is bool or t is float or t is bytes or t is bytearray or t is memoryview:
        return None
    if t is int:
        if not INT_MIN <= v <= UINT_MAX:
            return path, f"integer {v} does not fit in 64 bits (range -2**63 .. 2**64-1)"
        return None
    if t is str:
        try:
            v.encode()
        except UnicodeEncodeError as ex:
            return path, f"string is not valid UTF-8 ({ex.reason} at index {ex.start})"
        return None
    if isinstance(v, enum.Enum):
        return _value_problem(v.value, path, depth + 1)
    if isinstance(v, _MSGSPEC_EXTRA_VALUES):
        return None
    if isinstance(v, (list, tuple, set, frozenset)):
        for i, x in enumerate(v):
            p = _value_problem(x, f"{path}[{i}]", depth + 1)
            if p:
                return p
        return None
    if isinstance(v, dict):
        for k, x in v.items():
            # a non-str key is outside the documented set, but msgspec encodes
            # any encodable key: only its value can fail
            p = _value_problem(k, f"{path} (key {k!r})", depth + 1) or _value_problem(x, f"{path}.{k}", depth + 1)
            if p:
                return p
        return None
    if dataclasses.is_dataclass(t):
        try:
            check_type(t)
        except SnapshotError as ex:  # its message starts with the path inside t
            where, _, why = str(ex).partition(": ")
            return path + where[1:], why
        for name, x in _encoded_fields(v):
            p = _value_problem(x, f"{path}.{name}", depth + 1)
            if p:
                return p
        return None
    return path, f"unsupported type {t.__module__}.{t.__qualname__}"


def value_error(obj: Any, cause: BaseException | None = None) -> SnapshotError:
    """The SnapshotError for a value that failed to encode, with its path."""
    try:
        found = _value_problem(obj, "$", 0)
    except RecursionError:
        found = ("$", "nesting too deep")
    if found is None:
        if isinstance(cause, RecursionError):
            found = ("$", "nesting too deep")
        else:
            found = ("$", f"{type(cause).__name__}: {cause}" if cause else "cannot encode")
    return SnapshotError(f"{found[0]}: {found[1]}")


def decode_error(ex: BaseException) -> SnapshotError:
    """msgspec's decode errors as SnapshotError, path first:
    'Expected `str`, got `int` - at `$.x[3]`' -> '$.x[3]: expected str, got int'."""
    msg = str(ex)
    path = "$"
    head, sep, tail = msg.rpartition(" - at `")
    if sep:
        msg = head
        path = tail[:-1] if tail.endswith("`") else tail
        if "` in `" in path:  # "key` in `$.a" : the error is in a map key
            key, _, where = path.partition("` in `")
            path = f"{where} ({key})"
    msg = msg.replace("`", "")
    if isinstance(ex, msgspec.ValidationError):
        text = msg[:1].lower() + msg[1:]
    elif isinstance(ex, msgspec.DecodeError):
        text = f"corrupt or truncated snapshot: {msg}"
    else:
        text = f"{type(ex).__name__}: {msg}"
    return SnapshotError(f"{path}: {text}")


# ---- encode and decode ----------------------------------------------------------

def _reject(obj: Any) -> Any:
    # msgspec calls this only for types it cannot encode itself
    raise TypeError(f"unsupported type {type(obj).__qualname__}")


_ENCODERS = {
    "msgpack": msgspec.msgpack.Encoder(enc_hook=_reject),
    "json": msgspec.json.Encoder(enc_hook=_reject),
}
MSGPACK_ENCODE = _ENCODERS["msgpack"].encode
"""msgspec's MessagePack encoder: the same bytes as msgspec.msgpack.encode."""
ENCODE_ERRORS = (TypeError, OverflowError, ValueError, UnicodeEncodeError, RecursionError)
"""What msgspec raises for a value it cannot encode (value_error names it)."""
CHECKED_ROOTS: set[type] = set()
"""Root types whose hints were checked (or that have none): encode them at once."""
_decoders: dict[tuple[Any, str], Any] = {}


def _unknown_format(fmt: str) -> SnapshotError:
    return SnapshotError(f"$: unknown format {fmt!r} (expected 'msgpack' or 'json')")


def encode(obj: Any, fmt: str = "msgpack") -> bytes:
    """obj as msgspec encodes it in fmt; SnapshotError with the path otherwise."""
    enc = _ENCODERS.get(fmt)
    if enc is None:
        raise _unknown_format(fmt)
    t = type(obj)
    if t not in CHECKED_ROOTS:
        if dataclasses.is_dataclass(t):
            check_type(t)
        CHECKED_ROOTS.add(t)
    try:
        return enc.encode(obj)
    except ENCODE_ERRORS as ex:
        raise value_error(obj, ex) from None


def _decoder(tp: Any, fmt: str) -> Any:
    try:
        return _decoders[(tp, fmt)]
    except (KeyError, TypeError):
        pass
    if fmt not in FORMATS:
        raise _unknown_format(fmt)
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


def decode(data: Any, tp: Any, fmt: str = "msgpack") -> Any:
    """data decoded and validated into tp; SnapshotError with the path otherwise."""
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
