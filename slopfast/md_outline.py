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

from typing import NamedTuple

from . import native as _native
from .dispatch import dispatch, line_sample
from .wire import Input, records_reader

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


# md_outline's part: records "BIt" (level, line, text), read as Headings
_decode_outline = records_reader("BIt", Heading, order=(0, 2, 1))


def _run_native(op: str, data: bytes) -> bytes:
    return _native.run([(op, {})], [Input(b"<text>", data)])[0]


# The fallback imports markdown-it-py (about 40 ms): on its first use, not
# here, so that a call the native path answers never pays for it.
_FALLBACK = (f"{__package__}.fallbacks.md_outline",)


def _outline_fallback(data: bytes, text: str | None = None) -> list[Heading]:
    from .fallbacks import md_outline as fallback
    return [Heading(*h) for h in fallback.outline(_text(data, text))]


def _summary_fallback(data: bytes, text: str | None = None) -> str:
    from .fallbacks import md_outline as fallback
    return fallback.summary(_text(data, text))


def _outline_sample(data: bytes, budget: int):
    part = line_sample(data, budget)
    return (lambda: _decode_outline(_run_native("md_outline", part))), (lambda: _outline_fallback(part)), len(part)


def _summary_sample(data: bytes, budget: int):
    part = line_sample(data, budget)
    return (lambda: _run_native("md_summary", part)), (lambda: _summary_fallback(part)), len(part)


def markdown_outline(text: str | bytes) -> list[Heading]:
    """Every heading of a CommonMark document, in order: level (1-6), text
    (markdown-it-py's inline content: raw markdown, trimmed) and 0-based start
    line."""
    data, decoded = _prepare(text)
    return dispatch(
        "md_outline",
        len(data),
        lambda: _decode_outline(_run_native("md_outline", data)),
        lambda: _outline_fallback(data, decoded),
        sample=_outline_sample, sample_of=data, imports=_FALLBACK,
    )


def summarise_markdown(text: str | bytes) -> str:
    """The outline as an indented list: per heading, two spaces per level
    below 1, "- ", the text with newlines made spaces, and a newline."""
    data, decoded = _prepare(text)
    return dispatch(
        "md_summary",
        len(data),
        lambda: _run_native("md_summary", data).decode("utf-8"),
        lambda: _summary_fallback(data, decoded),
        sample=_summary_sample, sample_of=data, imports=_FALLBACK,
    )
