"""Type plans shared by both snapshot paths (native tape builder and msgspec).

A plan is compiled once per dataclass type and cached: its type hints are
checked against the supported set (docs/snapshot.md) and its field names are
pre-encoded as MessagePack keys for the native tape. The same module finds the
path of a bad value after a fast encode failed, so the fast paths never carry
a path around.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import types
import uuid
import typing
from typing import Any

import msgspec

from .errors import SlopfastError

__all__ = ["SnapshotError", "ClassPlan", "class_plan", "check_type", "find_problem", "value_error", "decode_error"]


class SnapshotError(SlopfastError, ValueError):
    """A snapshot cannot be serialized or deserialized; the message starts with
    the JSON-path-like location of the problem (``$.discussion[3].role``)."""


INT_MIN = -(1 << 63)
UINT_MAX = (1 << 64) - 1
MISSING = object()
UNSET = msgspec.UNSET

_SCALARS = (type(None), bool, int, float, str, bytes)
# Types msgspec encodes natively beyond the documented set. Type hints naming
# them are refused; values of them (in Any slots) are encoded as msgspec does
# on both paths (the native path hands such a snapshot to msgspec).
MSGSPEC_EXTRA_VALUES = (datetime.datetime, datetime.date, datetime.time, datetime.timedelta, uuid.UUID,
                        decimal.Decimal, msgspec.Raw, msgspec.msgpack.Ext, msgspec.Struct)
_DYNAMIC = (typing.Any, object)
_UNION_ORIGINS = (typing.Union, types.UnionType)
_LIST_ORIGINS = (list, typing.List)
_TUPLE_ORIGINS = (tuple, typing.Tuple)
_DICT_ORIGINS = (dict, typing.Dict)


class ClassPlan:
    """Per-dataclass plan, compiled once: the fields msgspec encodes, in order.

    `fields` holds (name, in_dict): in_dict fields are read from the instance
    __dict__ (an attribute that is only a class default is skipped, as
    msgspec skips it), slot fields with getattr. `hints` are the resolved
    type hints, already checked against the supported set."""

    __slots__ = ("cls", "names", "fields", "hints", "has_dict")

    def __init__(self, cls: type) -> None:
        slots: set[str] = set()
        for k in cls.__mro__:
            s = vars(k).get("__slots__", ())
            slots.update((s,) if isinstance(s, str) else s)
        self.cls = cls
        self.names = tuple(f.name for f in dataclasses.fields(cls))
        self.has_dict = any("__dict__" in vars(k) for k in cls.__mro__ if k is not object)
        self.fields = tuple((n, self.has_dict and n not in slots) for n in self.names)
        self.hints = typing.get_type_hints(cls)


_PLANS: dict[type, ClassPlan] = {}
_CHECKED: set[Any] = set()


def class_plan(cls: type) -> ClassPlan:
    """The cached plan of a dataclass type (its hints checked on first use)."""
    plan = _PLANS.get(cls)
    if plan is None:
        check_type(cls)
        plan = _PLANS[cls] = ClassPlan(cls)
    return plan


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


def _union_name(tp: Any) -> str:
    return " | ".join(_type_name(a) if a is not type(None) else "None" for a in typing.get_args(tp))


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


# ---- finding the path of a bad value (slow path, after a fast encode failed) --

def _value_problem(v: Any, path: str, depth: int) -> tuple[str, str] | None:
    """The first value msgspec (and the native tape builder) cannot encode.
    Mirrors msgspec's rules: exact scalar types (a str subclass is unsupported),
    list/tuple/dict subclasses accepted, an Enum encodes as its value, sets
    and msgspec's other native types (MSGSPEC_EXTRA_VALUES) accepted."""
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
    if isinstance(v, MSGSPEC_EXTRA_VALUES):
        return None
    if isinstance(v, (list, tuple, set, frozenset)):
        for i, x in enumerate(v):
            p = _value_problem(x, f"{path}[{i}]", depth + 1)
            if p:
                return p
        return None
    if isinstance(v, dict):
        for k, x in v.items():
            # a non-str key is outside the documented set, but msgspec (and so
            # both paths) encodes any encodable key: only its value can fail
            p = _value_problem(k, f"{path} (key {k!r})", depth + 1) or _value_problem(x, f"{path}.{k}", depth + 1)
            if p:
                return p
        return None
    if dataclasses.is_dataclass(t):
        try:
            plan = class_plan(t)
        except SnapshotError as ex:  # its message starts with the path inside t
            where, _, why = str(ex).partition(": ")
            return path + where[1:], why
        d = getattr(v, "__dict__", {})
        for name, in_dict in plan.fields:
            x = d.get(name, MISSING) if in_dict else getattr(v, name, MISSING)
            if x is MISSING or x is UNSET:
                continue
            p = _value_problem(x, f"{path}.{name}", depth + 1)
            if p:
                return p
        return None
    return path, f"unsupported type {t.__module__}.{t.__qualname__}"


def find_problem(obj: Any) -> tuple[str, str] | None:
    """(path, reason) of the first value that cannot be encoded, or None."""
    try:
        return _value_problem(obj, "$", 0)
    except RecursionError:
        return ("$", "nesting too deep")


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
