"""The op registry: one row per op, and everything that lists ops reads it.

An op named NAME lives in exactly four places (docs/internals.md):
lib/NAME.c (with its row in lib/op_table.h), fallbacks/NAME.py,
tests/test_NAME.py, and its row here. Its public functions live in
slopfast/MODULE.py, where MODULE is the row's `module` (NAME itself, or the
op it is a view of: md_summary is in md_outline). The public modules, the
lazy exports of `slopfast`, `slopfast bench` and `doctor`, the limit tests,
the fuzz seeds, the wire vectors and the op table in docs/wire-format.md all
derive from OPS; tests/test_ops.py checks OPS against lib/op_table.h.

Importing this module imports nothing else but slopfast._named: `import slopfast` reads it.
"""
from __future__ import annotations

TYPE_CHECKING = False   # typing.TYPE_CHECKING, without importing typing (its cost is start-up)
if TYPE_CHECKING:
    from typing import NamedTuple
else:
    from ._named import NamedTuple


class Op(NamedTuple):
    name: str
    """The wire name: lib/NAME.c defines op_NAME (unless `module` says otherwise)."""
    op_id: int | None
    """Its row in lib/op_table.h; None: no native path, by design (one implementation)."""
    module: str
    """The public module slopfast.MODULE, fallback slopfast.fallbacks.MODULE, tests/test_MODULE.py."""
    api: tuple[str, ...]
    """The public names slopfast.MODULE exports (and `slopfast` re-exports)."""
    fallback: str
    """The pure-Python implementation, "MODULE:FUNCTION" in slopfast.fallbacks."""
    params: tuple[str, ...] = ()
    """Parameter keys the C op reads; list values are LF-separated lines
    of TAB-separated fields (docs/wire-format.md, "Parameters")."""
    parts: str = "bytes"
    """Each part's layout: "bytes", or "records:SCHEMA" (docs/wire-format.md,
    "Record parts"); "A+B" when an op writes one part of each per request."""
    per: str = "input"
    """"input": one part (or part group) per input; "request": one in all."""
    inputs: str = "any"
    """The kind of input its fuzz seeds and limit tests feed it:
    "any", "markdown", "python" or "objects" (no wire input)."""
    bench: str | None = None
    """Its case in slopfast.bench (None: not benchmarked there)."""


OPS: tuple[Op, ...] = (
    Op("echo", 1, "echo", (), "echo:echo"),
    Op("aggregate", 2, "aggregate", ("AggregateReport", "BuildResult", "FileList", "aggregate_paths", "build_markdown"),
       "aggregate:build", params=("mode", "lang", "out_fd", "nofollow", "sniff", "max_bytes", "continues",
                                 "format", "open", "close", "first_index", "raw", "line_numbers",
                                 "vocab", "ranks", "encoding", "count_carry", "threads"),
       parts="bytes+records:Ii+records:IBQQ+records:QiQQis", per="request", bench="aggregate"),
    Op("md_outline", 3, "md_outline", ("Heading", "markdown_outline"), "md_outline:outline",
       parts="records:BIt", inputs="markdown", bench="md_outline"),
    Op("md_summary", 4, "md_outline", ("summarise_markdown",), "md_outline:summary", inputs="markdown"),
    Op("py_skeleton", 5, "py_skeleton", ("SkeletonError", "summarise_python"), "py_skeleton:skeleton",
       params=("full", "signatures"), inputs="python", bench="py_skeleton"),
    Op("snapshot", None, "snapshot",
       ("SnapshotError", "SnapshotHistory", "snapshot_deserialize", "snapshot_serialize"), "snapshot:encode",
       inputs="objects", bench="snapshot"),
    Op("tokens", 7, "tokens", ("TokenRanksError", "count_tokens", "count_tokens_many"), "tokens:count",
       params=("encoding", "ranks", "vocab"), parts="records:Q", per="request"),
    Op("walk", 8, "walk", (), "walk:walk", params=("hidden", "git", "index", "hash_len", "prefix", "offset", "layers", "ignore_case"),
       parts="records:IBsqIss+bytes", per="request"),
)

BY_NAME: dict[str, Op] = {op.name: op for op in OPS}
NATIVE: tuple[Op, ...] = tuple(op for op in OPS if op.op_id is not None)


def exports() -> dict[str, str]:
    """Public name -> the slopfast module that defines it."""
    return {name: op.module for op in OPS for name in op.api}
