"""Summaries for build_markdown's summary and skeleton modes: the same bytes
as lib/summary.c (docs/build-markdown.md has the rules)."""
from __future__ import annotations

from .aggregate import path_suffix

GENERIC_SUMMARY_LINES = 20

_MARKDOWN = (b"md", b"markdown")
_PYTHON = (b"py", b"pyi")


def file_kind(path: bytes) -> str:
    """"markdown", "python" or "other", by suffix ignoring ASCII case."""
    suffix = path_suffix(path).lower()
    if suffix in _MARKDOWN:
        return "markdown"
    if suffix in _PYTHON:
        return "python"
    return "other"


def generic_summary(data: bytes) -> bytes:
    """The first 20 lines, then "... N more lines" when there are more."""
    at = 0
    lines = 0
    while at < len(data) and lines < GENERIC_SUMMARY_LINES:
        nl = data.find(b"\n", at)
        at = len(data) if nl < 0 else nl + 1
        lines += 1
    more = data.count(b"\n", at) + (1 if at < len(data) and not data.endswith(b"\n") else 0)
    if not more:
        return data[:at]
    lead = b"" if at and data[at - 1 : at] == b"\n" else b"\n"
    return data[:at] + lead + b"... %d more line%s" % (more, b"" if more == 1 else b"s")


def summarise(path: bytes, data: bytes, skeleton: bool) -> bytes:
    from . import md_outline, py_skeleton  # markdown-it-py loads on first use, not on import
    kind = file_kind(path)
    if kind == "python":
        try:
            return py_skeleton.skeleton(data)
        except py_skeleton.SkeletonSyntaxError:
            pass
    if skeleton and kind != "python":
        return data
    if kind == "markdown" and not skeleton:
        outline = md_outline.summary(data.decode("utf-8", "replace")).encode("utf-8")
        if outline:
            return outline
    return generic_summary(data)
