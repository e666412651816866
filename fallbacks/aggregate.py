"""build_markdown in pure Python: the same bytes as lib/build_markdown.c."""
from __future__ import annotations

import errno as _errno
import re
from typing import Callable, Sequence

from slopfast.wire import MODE_DEFAULT, MODE_FULL, MODE_SKELETON, Input

SEPARATOR = b"\n\n---\n\n"

# A backtick run that could close a fence: alone on its line behind at most
# three spaces, followed only by spaces or tabs. Lines end at \n, \r\n or \r.
_CLOSING_RUN = re.compile(rb"(?:\A|(?<=[\r\n])) {0,3}(`{3,})[ \t]*(?=[\r\n]|\Z)")
# The same without lone CRs, anchored by MULTILINE (much faster to scan).
_CLOSING_RUN_LF = re.compile(rb"^ {0,3}(`{3,})[ \t]*\r?$", re.MULTILINE)
_BACKTICK_RUN = re.compile(rb"`+")


def fence_length(body: bytes) -> int:
    if b"```" not in body:
        return 3
    pattern = _CLOSING_RUN if b"\r" in body.replace(b"\r\n", b"") else _CLOSING_RUN_LF
    longest = max((len(m.group(1)) for m in pattern.finditer(body)), default=0)
    return longest + 1 if longest >= 3 else 3


def path_span(path: bytes) -> bytes:
    """A code span showing the path verbatim (docs/build-markdown.md)."""
    ticks = b"`" * (max((len(m) for m in _BACKTICK_RUN.findall(path)), default=0) + 1)
    ends = path[:1], path[-1:]
    pad = bool(path) and (b"`" in ends or (ends == (b" ", b" ") and path.strip(b" ") != b""))
    space = b" " if pad else b""
    shown = path.replace(b"\n", b" ").replace(b"\r", b" ")
    return ticks + space + shown + space + ticks


def path_suffix(path: bytes) -> bytes:
    name = path.rsplit(b"/", 1)[-1]
    i = name.rfind(b".")
    return name[i + 1 :] if 0 < i < len(name) - 1 else b""


def _safe_info(tag: bytes) -> bool:
    return not any(c == 0x60 or c <= 0x20 or c == 0x7F for c in tag)


def language(path: bytes, languages: dict[bytes, bytes]) -> bytes:
    suffix = path_suffix(path)
    tag = languages.get(suffix, suffix)
    return tag if _safe_info(tag) else b""


def read_input(item: Input) -> bytes:
    """The bytes of an input; OSError (with errno) when a file cannot be read."""
    if item.data is not None:
        return item.data
    if b"\0" in item.path:
        raise FileNotFoundError(_errno.ENOENT, "No such file or directory")
    with open(item.path, "rb") as f:
        return f.read()


Summariser = Callable[[bytes, bytes, bool], bytes]


def build(inputs: Sequence[Input], mode: int, languages: dict[bytes, bytes], summarise: Summariser) -> tuple[bytes, list[tuple[int, int]]]:
    """The document and the (index, errno) of each input that could not be read."""
    sections = []
    skipped = []
    for index, item in enumerate(inputs):
        try:
            data = read_input(item)
        except OSError as exc:
            skipped.append((index, exc.errno or _errno.EIO))
            continue
        item_mode = item.mode or mode
        body = data if item_mode in (MODE_FULL, MODE_DEFAULT) else summarise(item.path, data, item_mode == MODE_SKELETON)
        fence = b"`" * fence_length(body)
        sections.append(b"".join((
            b"### ", path_span(item.path), b"\n\n",
            fence, language(item.path, languages), b"\n", body, b"\n", fence,
        )))
    return SEPARATOR.join(sections), skipped
