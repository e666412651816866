"""Heading outlines of CommonMark documents (docs/markdown-outline.md).

`markdown_outline` gives the headings markdown-it-py's "commonmark" preset
finds, with its heading text and 0-based start line; `summarise_markdown`
renders them as an indented list. The native path (lib/md_outline.c) and the
fallback (markdown-it-py) give identical results.

Text: `str` is encoded as UTF-8 (a lone surrogate becomes "?"); `bytes` are
used as they are and, where they are not valid UTF-8, read as
`bytes.decode("utf-8", errors="replace")` reads them, on both paths.
"""
from __future__ import annotations

from functools import partial
from typing import NamedTuple

from . import native as _native
from .dispatch import dispatch, line_sample
from .fallbacks import md_outline as _fallback
from .wire import Input, decode_records

__all__ = ["Heading", "markdown_outline", "summarise_markdown"]

class Heading(NamedTuple):
    level: int
    text: str
    line: int


def _prepare(text: str | bytes) -> tuple[bytes, str | None]:
    """The bytes the native path reads and, for str input, the text the
    fallback parses (None: decode the bytes when needed)."""
    if isinstance(text, str):
        try:
            return text.encode("utf-8"), text
        except UnicodeEncodeError:
            data = text.encode("utf-8", "replace")
            return data, data.decode("utf-8")
    if isinstance(text, (bytes, bytearray, memoryview)):
        return bytes(text), None
    raise TypeError(f"markdown text must be str or bytes, not {type(text).__name__}")


def _text(data: bytes, text: str | None) -> str:
    return text if text is not None else data.decode("utf-8", "replace")


_heading = partial(tuple.__new__, Heading)


def _decode_outline(part: bytes) -> list[Heading]:
    """md_outline's part: records "BIt" (level, line, text)."""
    return [_heading((level, text, line)) for level, line, text in decode_records(part)]


def _run_native(op: str, data: bytes) -> bytes:
    return _native.run([(op, {})], [Input(b"<text>", data)])[0]


def _outline_native(data: bytes) -> list[Heading]:
    return _decode_outline(_run_native("md_outline", data))


def _outline_fallback(data: bytes, text: str | None = None) -> list[Heading]:
    return [Heading(*h) for h in _fallback.outline(_text(data, text))]


def _summary_native(data: bytes) -> str:
    return _run_native("md_summary", data).decode("utf-8")


def _summary_fallback(data: bytes, text: str | None = None) -> str:
    return _fallback.summary(_text(data, text))


def _sampler(native, fallback, data: bytes):
    """Both paths on the document's first lines, for calibrating a large one."""
    def sample(budget: int):
        part = line_sample(data, budget)
        return (lambda: native(part)), (lambda: fallback(part)), len(part)
    return sample


def markdown_outline(text: str | bytes) -> list[Heading]:
    """Every heading of a CommonMark document, in order: level (1-6), text
    (markdown-it-py's inline content: raw markdown, trimmed) and 0-based start
    line."""
    data, decoded = _prepare(text)
    return dispatch(
        "md_outline",
        len(data),
        lambda: _outline_native(data),
        lambda: _outline_fallback(data, decoded),
        sample=_sampler(_outline_native, _outline_fallback, data),
    )


def summarise_markdown(text: str | bytes) -> str:
    """The outline as an indented list: per heading, two spaces per level
    below 1, "- ", the text with newlines made spaces, and a newline."""
    data, decoded = _prepare(text)
    return dispatch(
        "md_summary",
        len(data),
        lambda: _summary_native(data),
        lambda: _summary_fallback(data, decoded),
        sample=_sampler(_summary_native, _summary_fallback, data),
    )
