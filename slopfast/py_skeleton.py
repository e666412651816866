"""Skeletons of Python modules (docs/python-skeleton.md).

`summarise_python` keeps a module's docstring, imports, assignments, class
and def headers as written (with their docstrings) and the if/try blocks
holding any of these; every other body becomes an indented `...`. The
native path (lib/py_skeleton.c, a lexical scanner) and the fallback
(fallbacks/py_skeleton.py: `ast`, and a port of the scanner where ast cannot
build the module) give identical results for every source.

The rule is the scanner's verdict: source the scanner rejects (bad UTF-8,
NUL, unterminated string, unbalanced bracket, bad indentation, a header
without its colon, a stray clause...) raises `SkeletonError` with the
scanner's message on both paths. A grammar error inside one statement
(`x = = 1`, Python 2 `print "x"`) is seen by `ast` only: there both paths
return the scanner's best-effort skeleton. `strict=True` checks the source
with `ast.parse` first on both paths: every source ast rejects then raises,
with CPython's message, at the price of the parse.
"""
from __future__ import annotations

from typing import Iterable

from . import native as _native
from .dispatch import dispatch
from .errors import PipelineError
from .wire import CODE_OP_FAILED, Input

__all__ = ["SkeletonError", "summarise_python"]


class SkeletonError(PipelineError, ValueError):
    """The source is not Python that can be skeletoned (syntax or encoding)."""

    def __init__(self, message: str):
        super().__init__(message, code=CODE_OP_FAILED, op="py_skeleton")


def _source_bytes(source: str | bytes) -> bytes:
    if isinstance(source, str):
        try:
            return source.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise SkeletonError(f"source is not encodable as UTF-8 (character {exc.start})") from None
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    raise TypeError(f"source must be str or bytes, not {type(source).__name__}")


def _name_list(names: Iterable[str] | str, what: str) -> list[str]:
    if isinstance(names, str):
        names = [names]
    out = []
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"{what}: names must be str, not {type(name).__name__}")
        if "\n" in name or "\r" in name:
            raise ValueError(f"{what}: a name cannot contain a line break: {name!r}")
        if name:
            out.append(name)
    return out


def _native_skeleton(data: bytes, full: list[str], signatures: list[str]) -> bytes:
    params = {}
    if full:
        params["full"] = "\n".join(full)
    if signatures:
        params["signatures"] = "\n".join(signatures)
    try:
        return _native.run([("py_skeleton", params)], [Input(b"<source>", data)])[0]
    except PipelineError as exc:
        if exc.code == CODE_OP_FAILED:
            raise SkeletonError(exc.detail) from None
        raise


# The fallback (`ast` and the scanner port: about 17 ms to import) loads on
# its first use, not here, so that a call the native path answers never pays for it.
_FALLBACK = (f"{__package__}.fallbacks.py_skeleton",)


def _fallback():
    from .fallbacks import py_skeleton
    return py_skeleton


def _fallback_skeleton(data: bytes, full: list[str], signatures: list[str]) -> bytes:
    fallback = _fallback()
    try:
        return fallback.skeleton(data, full, signatures)
    except fallback.SkeletonSyntaxError as exc:
        raise SkeletonError(str(exc)) from None


def summarise_python(
    source: str | bytes,
    *,
    full: Iterable[str] = (),
    signatures: Iterable[str] = (),
    strict: bool = False,
) -> str:
    """The skeleton of a Python module (UTF-8; a BOM is dropped, line ends
    become LF).

    `full`: qualified names ("Class.method", "func") whose whole source is
    kept. `signatures`: names whose header only is kept (no docstring, and
    for a class none of its members). A name in both is kept in full; an
    unknown name is ignored. `strict`: check the source with `ast.parse` on
    both paths first (see the module docstring)."""
    data = _source_bytes(source)
    full_names = _name_list(full, "full")
    sig_names = _name_list(signatures, "signatures")
    if strict:
        fallback = _fallback()
        try:
            fallback.check(data)
        except fallback.SkeletonSyntaxError as exc:
            raise SkeletonError(str(exc)) from None
    out = dispatch(
        "py_skeleton",
        len(data),
        lambda: _native_skeleton(data, full_names, sig_names),
        lambda: _fallback_skeleton(data, full_names, sig_names),
        sample=_sample, sample_of=data, imports=_FALLBACK,
    )
    return out.decode("utf-8")


def _sample(data: bytes, budget: int):
    """Both paths on the module's first top-level statements (cut before a line
    that starts in column 0), for calibrating a large module."""
    cut = len(data) if len(data) <= budget else max(data.rfind(b"\n", 0, budget), 0)
    while 0 < cut < len(data) and data[cut + 1 : cut + 2] in (b" ", b"\t", b"\n", b"#", b")", b"]", b"}"):
        cut = max(data.rfind(b"\n", 0, cut), 0)
    part = data[: cut + 1] if cut else data[:budget]
    return (lambda: _native_skeleton(part, [], [])), (lambda: _fallback_skeleton(part, [], [])), len(part)
