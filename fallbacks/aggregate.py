"""build_markdown in pure Python: the same bytes, limits and errors as
lib/aggregate.c (docs/build-markdown.md)."""
from __future__ import annotations

import errno as _errno
import os
import re
import stat
from typing import Callable, Sequence

from slopfast.errors import PipelineError
from slopfast.wire import CODE_LIMIT, MODE_DEFAULT, MODE_FULL, MODE_SKELETON, Input

SEPARATOR = b"\n\n---\n\n"

# The limits of lib/op.h that build_markdown meets (tests/test_aggregate.py
# checks them against it). Both paths apply them alike.
LIMIT_INPUTS = 1 << 20              # inputs per request: the native path sends more in several
LIMIT_NAME_BYTES = (1 << 16) - 1    # an item's path
LIMIT_REQUEST_BYTES = 1 << 32       # one request: the native path splits to stay under it
LIMIT_INPUT_BYTES = 1 << 31         # an item's content, read from a file or inline: past it EFBIG
LIMIT_OUTPUT_BYTES = 1 << 33        # the response: document + 8-byte length, skipped records part
RESPONSE_OVERHEAD = 8 + 15          # the document's length field; the records part's header ("Ii")
RECORD_BYTES = 8                    # one skipped input: U4 index, S4 errno

# O_NONBLOCK: a FIFO opens without waiting for a writer (then it is refused,
# unread); O_NOCTTY: a terminal never becomes the controlling one.
_OPEN_FLAGS = os.O_RDONLY
for _flag in ("O_BINARY", "O_NONBLOCK", "O_NOCTTY", "O_CLOEXEC"):
    _OPEN_FLAGS |= getattr(os, _flag, 0)
_READ_CHUNK = 1 << 20


def output_limit_error() -> PipelineError:
    """What the native path raises for a document past LIMIT_OUTPUT_BYTES."""
    detail = f"output larger than the limit of {LIMIT_OUTPUT_BYTES} bytes"
    return PipelineError(f"aggregate: {detail} (limit exceeded)", code=CODE_LIMIT, op="aggregate", detail=detail)


def path_limit_error(length: int) -> PipelineError:
    """What the native path raises for an item path past LIMIT_NAME_BYTES."""
    detail = f"input path of {length} bytes; the limit is {LIMIT_NAME_BYTES}"
    return PipelineError(f"{detail} (limit exceeded)", code=CODE_LIMIT, detail=detail)


def response_bytes(document: bytes, skipped: int) -> int:
    """The size of the native response's parts for this document."""
    return len(document) + RESPONSE_OVERHEAD + RECORD_BYTES * skipped

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


EMPTY_PATH_HEADING = b"(empty path)"   # plain text, no code span: no path looks like it


def path_span(path: bytes) -> bytes:
    """A code span showing the path verbatim, CR and LF each as a space
    (docs/build-markdown.md); an empty path is EMPTY_PATH_HEADING."""
    if not path:
        return EMPTY_PATH_HEADING
    shown = path.replace(b"\n", b" ").replace(b"\r", b" ")
    ticks = b"`" * (max((len(m) for m in _BACKTICK_RUN.findall(path)), default=0) + 1)
    ends = shown[:1], shown[-1:]
    pad = b"`" in ends or (ends == (b" ", b" ") and shown.strip(b" ") != b"")
    space = b" " if pad else b""
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


def _error(code: int) -> OSError:
    return OSError(code, os.strerror(code))


def read_input(item: Input) -> bytes:
    """The bytes of an input; OSError (with errno) when it cannot be read, as
    lib/core.c's input_load: only a regular file of at most LIMIT_INPUT_BYTES
    is read, checked on the open descriptor before any byte is (a directory
    EISDIR, anything else EINVAL, too big EFBIG), and the read stops past the
    limit (a file that grows). Inline content past the limit is EFBIG too."""
    if item.data is not None:
        if len(item.data) > LIMIT_INPUT_BYTES:
            raise _error(_errno.EFBIG)
        return item.data
    if b"\0" in item.path:
        raise _error(_errno.ENOENT)
    fd = os.open(item.path, _OPEN_FLAGS)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _error(_errno.EISDIR if stat.S_ISDIR(st.st_mode) else _errno.EINVAL)
        if st.st_size > LIMIT_INPUT_BYTES:
            raise _error(_errno.EFBIG)
        chunks, total, want = [], 0, st.st_size + 1   # one past the size: a file that grew reads on
        while True:
            chunk = os.read(fd, want)
            if not chunk:
                break
            total += len(chunk)
            if total > LIMIT_INPUT_BYTES:
                raise _error(_errno.EFBIG)
            chunks.append(chunk)
            want = max(want - len(chunk), _READ_CHUNK)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)
    finally:
        os.close(fd)


Summariser = Callable[[bytes, bytes, bool], bytes]


def build(inputs: Sequence[Input], mode: int, languages: dict[bytes, bytes], summarise: Summariser) -> tuple[bytes, list[tuple[int, int]]]:
    """The document and the (index, errno) of each input that could not be
    read; PipelineError past LIMIT_OUTPUT_BYTES, as the native path."""
    sections = []
    skipped = []
    size = -len(SEPARATOR)
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
        size += len(SEPARATOR) + len(sections[-1])
        if size + RESPONSE_OVERHEAD > LIMIT_OUTPUT_BYTES:   # stop early: the native path stops here too
            raise output_limit_error()
    document = SEPARATOR.join(sections)
    if response_bytes(document, len(skipped)) > LIMIT_OUTPUT_BYTES:
        raise output_limit_error()
    return document, skipped
