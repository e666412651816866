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

import struct
from typing import NamedTuple

from . import native as _native
from . import wire as _wire
from .dispatch import dispatch
from .errors import PipelineError
from .fallbacks import md_outline as _fallback
from .wire import Input

__all__ = ["Heading", "markdown_outline", "summarise_markdown"]

_RECORD = struct.Struct("<BII")


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


def _decode_outline(part: bytes) -> list[Heading]:
    """md_outline's part: records of U1 level, U4 line, U4 length, text."""
    out = []
    at, end = 0, len(part)
    unpack = _RECORD.unpack_from
    while at < end:
        level, line, size = unpack(part, at)
        at += 9
        out.append(Heading(level, part[at : at + size].decode("utf-8"), line))
        at += size
    return out


_prefixes: dict[str, bytes | None] = {}


def _prefix(op: str) -> bytes | None:
    """The v2 request of one `op` over one inline input, up to the input's
    length: a request is this, the length (U8 LE) and the text. Built once per
    op from wire.encode_request and checked against it (None: use it as is)."""
    try:
        return _prefixes[op]
    except KeyError:
        pass
    probe = b"# probe\n"
    full = _wire.encode_request([(op, {})], [Input(b"<text>", probe)])
    prefix = full[: -len(probe) - 8]
    ok = prefix + len(probe).to_bytes(8, "little") + probe == full
    _prefixes[op] = prefix if ok else None
    return _prefixes[op]


def _run_native(op: str, data: bytes) -> bytes:
    # One op, one inline input: the request is a cached prefix and the text
    # (wire.encode_request's general loop costs several microseconds a call,
    # which is a good part of a call on a small document).
    prefix = _prefix(op)
    if prefix is None:
        return _native.run([(op, {})], [Input(b"<text>", data)])[0]
    response = _native.run_blob(b"".join((prefix, len(data).to_bytes(8, "little"), data)))
    if response.code:
        name = _wire.CODE_NAMES.get(response.code, "error")
        raise PipelineError(f"{response.message} ({name})", code=response.code)
    return response.parts[0]


def markdown_outline(text: str | bytes) -> list[Heading]:
    """Every heading of a CommonMark document, in order: level (1-6), text
    (markdown-it-py's inline content: raw markdown, trimmed) and 0-based start
    line."""
    data, decoded = _prepare(text)
    return dispatch(
        "md_outline",
        len(data),
        lambda: _decode_outline(_run_native("md_outline", data)),
        lambda: [Heading(*h) for h in _fallback.outline(_text(data, decoded))],
    )


def summarise_markdown(text: str | bytes) -> str:
    """The outline as an indented list: per heading, two spaces per level
    below 1, "- ", the text with newlines made spaces, and a newline."""
    data, decoded = _prepare(text)
    return dispatch(
        "md_summary",
        len(data),
        lambda: _run_native("md_summary", data).decode("utf-8"),
        lambda: _fallback.summary(_text(data, decoded)),
    )
