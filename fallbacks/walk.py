"""The walk op's fallback: slopfast.walk's Python walk, the oracle of the C walk
(lib/walk.c; tests/test_walk_native.py compares their events)."""
from __future__ import annotations

TYPE_CHECKING = False   # typing.TYPE_CHECKING, without importing typing (its cost is start-up)
if TYPE_CHECKING:
    from typing import Any, Iterator, Sequence


def walk(paths: Sequence[str], options: Any = None) -> Iterator[Any]:
    """The events of slopfast.walk.walk(paths, options), walked in Python."""
    from ..walk import walk as walk_
    return walk_(paths, options, native=False)
