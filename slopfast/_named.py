"""`class X(NamedTuple)` without importing typing at run time.

`typing` costs the command 3-5 ms a run (docs/benchmarks-cli.md, "Start-up"),
and the aggregate path needs nothing else from it. Modules write

    if TYPE_CHECKING:
        from typing import NamedTuple
    else:
        from ._named import NamedTuple

so that type checkers see typing's, and at run time this class statement
makes the same class typing.NamedTuple makes: collections.namedtuple of the
annotated fields (those with a value are its defaults), with the body's
methods, properties and docstring. The annotations must be strings
(`from __future__ import annotations`): they are kept as written.
"""
from __future__ import annotations

from collections import namedtuple

# as typing's NamedTupleMeta: what a body may not set, and what it does not copy
_PROHIBITED = frozenset({"__new__", "__init__", "__slots__", "__getnewargs__", "_fields", "_field_defaults",
                         "_make", "_replace", "_asdict", "_source"})
_SPECIAL = frozenset({"__module__", "__name__", "__annotations__"})


class _NamedTupleMeta(type):
    def __new__(mcls, typename: str, bases: tuple, ns: dict):
        if not bases:                       # NamedTuple itself
            return super().__new__(mcls, typename, bases, ns)
        if bases != (NamedTuple,):
            raise TypeError("a NamedTuple class has NamedTuple as its only base")
        if "__annotations__" not in ns:
            raise TypeError(f"{typename}: slopfast._named.NamedTuple needs `from __future__ import annotations`")
        fields = list(ns["__annotations__"])
        defaults = []
        for name in fields:
            if name in ns:
                defaults.append(ns[name])
            elif defaults:
                raise TypeError(f"Non-default namedtuple field {name} cannot follow default field"
                                f"{'s' if len(defaults) > 1 else ''} {', '.join(f for f in fields if f in ns)}")
        cls = namedtuple(typename, fields, defaults=defaults, module=ns["__module__"])
        cls.__annotations__ = cls.__new__.__annotations__ = dict(ns["__annotations__"])
        for key, value in ns.items():
            if key in _PROHIBITED:
                raise AttributeError("Cannot overwrite NamedTuple attribute " + key)
            if key not in _SPECIAL and key not in fields:
                setattr(cls, key, value)
        return cls


class NamedTuple(metaclass=_NamedTupleMeta):
    """Base of a class statement only (the functional form is typing's)."""
