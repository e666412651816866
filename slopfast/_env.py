"""Fast reads of slopfast's environment variables.

os.environ.get costs about a microsecond for an unset name (it encodes the key
and raises internally; 995 ns here, against 58 ns for a reader), and dispatch
and the native binding read a variable on every call, where a call on a small
input takes a few microseconds in all. So we look the pre-encoded key up in
os.environ's backing dict, which stays in step with os.environ (and with
pytest's monkeypatch), falling back to os.environ.get where it is absent.
"""
from __future__ import annotations

import os

TYPE_CHECKING = False   # typing.TYPE_CHECKING, without importing typing (its cost is start-up)
if TYPE_CHECKING:
    from typing import Callable

_data = getattr(os.environ, "_data", None)
_encodekey = getattr(os.environ, "encodekey", None)
_decodevalue = getattr(os.environ, "decodevalue", None)


def reader(name: str) -> Callable[[], str | None]:
    """A zero-argument function returning the variable's value, or None."""
    if _data is None or _encodekey is None or _decodevalue is None:
        return lambda: os.environ.get(name)
    key = _encodekey(name)
    get = _data.get
    decode = _decodevalue

    def read() -> str | None:
        value = get(key)
        return None if value is None else decode(value)

    return read
