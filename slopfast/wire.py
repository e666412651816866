"""The wire format between Python and libchunks (docs/wire-format.md).

A request is a list of ops (name + string parameters) and a list of inputs
(inline bytes, or a file path the C side reads). v2 is the binary form used
in-process; v1 is the text envelope a person can write. Both decode to the
same request in C. The response is a code, a message and a list of parts.
"""
from __future__ import annotations

import functools
import struct
from typing import NamedTuple, Sequence

from .errors import PipelineError

MAGIC_V2 = b"SLPF"
MAGIC_V1 = b"slopfast-request "
MAGIC_RESPONSE = b"SLPR"

KIND_INLINE = 0
KIND_FILE = 1

MODE_DEFAULT, MODE_FULL, MODE_SUMMARY, MODE_SKELETON = 0, 1, 2, 3
MODE_NAMES = ("default", "full", "summary", "skeleton")

RESPONSE_BINARY = 0
RESPONSE_TEXT = 1

# Response codes (lib/op.h).
CODE_NAMES = {
    0: "ok",
    1: "bad request",
    2: "unknown op",
    3: "bad parameter",
    4: "input error",
    5: "limit exceeded",
    6: "out of memory",
    7: "op failed",
}

Op = tuple[str, dict[str, str | bytes]]

_u2 = struct.Struct("<H").pack
_u4 = struct.Struct("<I").pack
_u8 = struct.Struct("<Q").pack
_input_head = struct.Struct("<BBI").pack


class Input(NamedTuple):
    """One input: `data` bytes inline, or `data=None` for a file C reads at `path`."""

    path: bytes
    data: bytes | None = None
    mode: int = MODE_DEFAULT


def _b(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8", "surrogateescape")


@functools.lru_cache(maxsize=64)
def _bare_op(name: str) -> bytes:
    """The v2 bytes of an op with no parameters (most calls: built once)."""
    name_b = name.encode()
    return _u2(len(name_b)) + name_b + _u2(0)


def encode_request(ops: Sequence[Op], inputs: Sequence[Input], response_format: int = RESPONSE_BINARY) -> bytes:
    """The v2 binary request."""
    if len(ops) == 1 and len(inputs) == 1 and response_format == RESPONSE_BINARY:
        (name, params), (path, data, mode) = ops[0], inputs[0]
        if not params and data is not None and not mode:
            return _encode_single(name, path, data)
    out = [MAGIC_V2, b"\x02", bytes((response_format,)), b"\0\0", _u4(len(ops))]
    for name, params in ops:
        if not params:
            out.append(_bare_op(name))
            continue
        name_b = name.encode()
        out += (_u2(len(name_b)), name_b, _u2(len(params)))
        for key, value in params.items():
            key_b, value_b = key.encode(), _b(value)
            out += (_u2(len(key_b)), key_b, _u4(len(value_b)), value_b)
    out.append(_u4(len(inputs)))
    for path, data, mode in inputs:
        if data is None:
            out += (_input_head(KIND_FILE, mode, len(path)), path)
        else:
            out += (_input_head(KIND_INLINE, mode, len(path)), path, _u8(len(data)), data)
    return b"".join(out)


@functools.lru_cache(maxsize=64)
def _single_prefix(op: str, path: bytes) -> bytes:
    """A one-op, one-inline-input request up to the input's length field."""
    return b"".join((MAGIC_V2, b"\x02", bytes((RESPONSE_BINARY,)), b"\0\0", _u4(1), _bare_op(op),
                     _u4(1), _input_head(KIND_INLINE, MODE_DEFAULT, len(path)), path))


def _encode_single(op: str, path: bytes, data: bytes) -> bytes:
    """The shape of most calls (one op without parameters, one inline input),
    from a cached prefix: the general loop costs about 1 us more, a good part
    of a call on a small document."""
    return b"".join((_single_prefix(op, path), _u8(len(data)), data))


def _escape(token: bytes) -> bytes:
    """%XX-escape the bytes that would end or split a v1 token."""
    return b"".join(b"%%%02X" % c if c <= 0x20 or c in b"%=" or c == 0x7F else bytes((c,)) for c in token)


def encode_request_text(ops: Sequence[Op], inputs: Sequence[Input], response_format: int = RESPONSE_TEXT) -> bytes:
    """The v1 text envelope of the same request.

    A v1 token cannot be empty, so an empty op name or path (which v2 can
    carry) raises ValueError."""
    lines = [MAGIC_V1 + b"1\n"]
    for name, params in ops:
        if not name:
            raise ValueError("the v1 text envelope cannot carry an empty op name")
        words = [b"op", _escape(name.encode())]
        words += [_escape(k.encode()) + b"=" + _escape(_b(v)) for k, v in params.items()]
        lines.append(b" ".join(words) + b"\n")
    for path, data, mode in inputs:
        if not path:
            raise ValueError("the v1 text envelope cannot carry an empty input path")
        words = [b"input", b"file" if data is None else b"inline", _escape(path)]
        if data is not None:
            words.append(str(len(data)).encode())
        if mode:
            words.append(b"mode=" + MODE_NAMES[mode].encode())
        lines.append(b" ".join(words) + b"\n")
        if data is not None:
            lines.append(data + b"\n")
    lines.append(b"format text\n" if response_format == RESPONSE_TEXT else b"format binary\n")
    lines.append(b"end\n")
    return b"".join(lines)


class Response(NamedTuple):
    code: int
    message: str
    parts: list[bytes]


def decode_response(blob: bytes) -> Response:
    """Decode a v2 binary or v1 text response."""
    if blob[:4] == MAGIC_RESPONSE:
        return _decode_binary(blob)
    if blob.startswith(b"slopfast-response 1\n"):
        return _decode_text(blob)
    raise PipelineError("malformed response: bad magic", code=1)


def _decode_binary(blob: bytes) -> Response:
    try:
        if blob[4] != 2:
            raise PipelineError(f"unsupported response version {blob[4]}", code=1)
        code, msg_len = struct.unpack_from("<iI", blob, 8)
        at = 16 + msg_len
        message = blob[16:at].decode("utf-8", "replace")
        (count,) = struct.unpack_from("<I", blob, at)
        at += 4
        parts = []
        view = memoryview(blob)
        for _ in range(count):
            (n,) = struct.unpack_from("<Q", blob, at)
            at += 8
            if at + n > len(blob):
                raise PipelineError("malformed response: part longer than the response", code=1)
            parts.append(view[at : at + n].tobytes())
            at += n
    except (IndexError, struct.error) as exc:
        raise PipelineError(f"malformed response: {exc}", code=1) from None
    return Response(code, message, parts)


def _read_counted(blob: bytes, at: int, word: bytes) -> tuple[bytes, int]:
    """`WORD LEN\\n` + LEN bytes + `\\n`, at offset `at`."""
    end = blob.index(b"\n", at)
    keyword, _, length = blob[at:end].partition(b" ")
    if keyword != word:
        raise PipelineError(f"malformed text response: expected {word!r}", code=1)
    n = int(length)
    start = end + 1
    return blob[start : start + n], start + n + 1


def _decode_text(blob: bytes) -> Response:
    try:
        at = blob.index(b"\n") + 1
        end = blob.index(b"\n", at)
        code = int(blob[at:end].split(b" ", 1)[1])
        message, at = _read_counted(blob, end + 1, b"message")
        parts = []
        while not blob.startswith(b"end\n", at):
            part, at = _read_counted(blob, at, b"part")
            parts.append(part)
    except (ValueError, IndexError) as exc:
        raise PipelineError(f"malformed text response: {exc}", code=1) from None
    return Response(code, message.decode("utf-8", "replace"), parts)
