"""The wire format between Python and libchunks (docs/wire-format.md).

A request is a list of ops (name + string parameters) and a list of inputs
(inline bytes, or a file path the C side reads). v3 is the binary form used
in-process; v1 is the text envelope a person can write. Both decode to the
same request in C. The response is a code, a message and a list of parts.
"""
from __future__ import annotations

import functools
import struct

from .errors import PipelineError

TYPE_CHECKING = False   # typing.TYPE_CHECKING, without importing typing (its cost is start-up)
if TYPE_CHECKING:
    from typing import Any, Callable, NamedTuple, Sequence
else:
    from ._named import NamedTuple

MAGIC_V2 = b"SLPF"
MAGIC_V1 = b"slopfast-request "
MAGIC_RESPONSE = b"SLPR"
MAGIC_RESPONSE_TEXT = b"slopfast-response 2\n"
WIRE_VERSION = 3   # of the binary request and response (lib/pipeline.h)
_VERSION_BYTE = bytes((WIRE_VERSION,))

KIND_INLINE = 0
KIND_FILE = 1

MODE_DEFAULT, MODE_FULL, MODE_SUMMARY, MODE_SKELETON = 0, 1, 2, 3
MODE_NAMES = ("default", "full", "summary", "skeleton")

# Why the aggregate op's load checks left a file out (lib/op.h Skip).
SKIP_NONE, SKIP_BINARY, SKIP_TOO_LARGE, SKIP_SPECIAL, SKIP_OUTPUT, SKIP_SYMLINK = 0, 1, 2, 3, 4, 5
SKIP_NAMES = ("", "binary", "too-large", "special", "output", "symlink")
SNIFF_BYTES = 8192

RESPONSE_BINARY = 0
RESPONSE_TEXT = 1

# Response codes, mode names: lib/op.h is the source; tests/test_ops.py checks these.
CODE_OK, CODE_BAD_REQUEST, CODE_UNKNOWN_OP, CODE_BAD_PARAM = 0, 1, 2, 3
CODE_INPUT_ERROR, CODE_LIMIT, CODE_NO_MEMORY, CODE_OP_FAILED = 4, 5, 6, 7
CODE_NAMES = {
    CODE_OK: "ok",
    CODE_BAD_REQUEST: "bad request",
    CODE_UNKNOWN_OP: "unknown op",
    CODE_BAD_PARAM: "bad parameter",
    CODE_INPUT_ERROR: "input error",
    CODE_LIMIT: "limit exceeded",
    CODE_NO_MEMORY: "out of memory",
    CODE_OP_FAILED: "op failed",
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
    """The v3 bytes of an op with no parameters (most calls: built once)."""
    name_b = name.encode()
    return _u2(len(name_b)) + name_b + _u2(0)


def encode_request(ops: Sequence[Op], inputs: Sequence[Input], response_format: int = RESPONSE_BINARY) -> bytes:
    """The v3 binary request."""
    if len(ops) == 1 and len(inputs) == 1 and response_format == RESPONSE_BINARY:
        (name, params), (path, data, mode) = ops[0], inputs[0]
        if not params and data is not None and not mode:
            return _encode_single(name, path, data)
    out = [MAGIC_V2, _VERSION_BYTE, bytes((response_format,)), b"\0\0", _u4(len(ops))]
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


def request_base_bytes(ops: Sequence[Op]) -> int:
    """len(encode_request(ops, [])), without encoding: what a request costs
    before its inputs (aggregate splits its inputs into requests by it)."""
    size = 16
    for name, params in ops:
        size += 4 + len(name.encode())
        for key, value in params.items():
            size += 6 + len(key.encode()) + len(_b(value))
    return size


@functools.lru_cache(maxsize=64)
def _single_prefix(op: str, path: bytes) -> bytes:
    """A one-op, one-inline-input request up to the input's length field."""
    return b"".join((MAGIC_V2, _VERSION_BYTE, bytes((RESPONSE_BINARY,)), b"\0\0", _u4(1), _bare_op(op),
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

    A v1 token cannot be empty, so an empty op name or path (which v3 can
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


def decode_response(blob: bytes | memoryview) -> Response:
    """The one response reader: a binary or text response, from bytes or from
    a memoryview of the library's memory (each part is copied out once)."""
    try:
        magic, version, code, msg_len = _head_from(blob)
    except struct.error:
        magic = None
    if magic != MAGIC_RESPONSE:
        if bytes(blob[: len(MAGIC_RESPONSE_TEXT)]) == MAGIC_RESPONSE_TEXT:
            return _decode_text(bytes(blob))
        raise PipelineError("malformed response: bad magic", code=CODE_BAD_REQUEST)
    if version != WIRE_VERSION:
        raise PipelineError(f"unsupported response version {version} (this package speaks {WIRE_VERSION})",
                            code=CODE_BAD_REQUEST)
    copy = type(blob) is not bytes   # a memoryview (or bytearray): parts are copied out of it
    try:
        at = 16 + msg_len
        message = bytes(blob[16:at]).decode("utf-8", "replace") if msg_len else ""
        (count,) = _u4_from(blob, at)
        at += 4
        parts = []
        end = len(blob)
        for _ in range(count):
            (n,) = _u8_from(blob, at)
            at += 8
            if n > end - at:
                raise PipelineError("malformed response: part longer than the response", code=CODE_BAD_REQUEST)
            parts.append(bytes(blob[at : at + n]) if copy else blob[at : at + n])
            at += n
    except struct.error as exc:
        raise PipelineError(f"malformed response: {exc}", code=CODE_BAD_REQUEST) from None
    return Response(code, message, parts)


_head_from = struct.Struct("<4sB3xiI").unpack_from   # magic, version, code, message length
_u4_from = struct.Struct("<I").unpack_from
_u8_from = struct.Struct("<Q").unpack_from


def _read_counted(blob: bytes, at: int, word: bytes) -> tuple[bytes, int]:
    """`WORD LEN\\n` + LEN bytes + `\\n`, at offset `at`."""
    end = blob.index(b"\n", at)
    keyword, _, length = blob[at:end].partition(b" ")
    if keyword != word:
        raise PipelineError(f"malformed text response: expected {word!r}", code=CODE_BAD_REQUEST)
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
        raise PipelineError(f"malformed text response: {exc}", code=CODE_BAD_REQUEST) from None
    return Response(code, message.decode("utf-8", "replace"), parts)


# ---- record parts ------------------------------------------------------------
#
# A record part is self-describing: U1 column count C, C type letters, U4 row
# count, then the rows, each its columns in order (docs/wire-format.md, "Record
# parts"). B I i Q q are struct's little-endian integers; s is U4 length + bytes,
# t the same holding UTF-8 text (decoded to str).

_FIXED = {"B": 1, "I": 4, "i": 4, "Q": 8, "q": 8}
_readers: dict[bytes, Callable] = {}


def _row_reader(schema: bytes, row: type | None = None, order: Sequence[int] | None = None):
    """A function (part, at, count) -> rows for this schema, compiled once
    (as namedtuple compiles its class): each run of fixed columns and the
    length of the string after it are one unpack, a row is built in one go.
    `row` and `order`: rows as row(columns in that order) instead of tuples."""
    letters = schema.decode("ascii")
    if not letters or any(c not in _FIXED and c not in "st" for c in letters):
        raise PipelineError(f"malformed record part: schema {letters!r}", code=CODE_BAD_REQUEST)
    env: dict[str, Any] = {"PipelineError": PipelineError, "CODE": CODE_BAD_REQUEST, "new": tuple.__new__, "row": row}
    body, names, fmt = [], [], "<"

    def flush(length: str | None) -> None:
        nonlocal fmt
        fields = names[len(names) - (len(fmt) - 1):] + ([length] if length else [])
        if fields:
            key = f"u{len(env)}"
            env[key] = struct.Struct(fmt + ("I" if length else "")).unpack_from
            body.append(f"{', '.join(fields)}, = {key}(part, at); at += {struct.calcsize(fmt + ('I' if length else ''))}")
        fmt = "<"

    for i, letter in enumerate(letters):
        if letter in _FIXED:
            names.append(f"c{i}")
            fmt += letter
        else:
            flush(f"n{i}")
            names.append(f"c{i}")
            body.append(f"e = at + n{i}; c{i} = part[at:e]{'.decode()' if letter == 't' else ''}; at = e")
    flush(None)
    values = ", ".join(names[j] for j in (order or range(len(names)))) + ","
    make = f"new(row, ({values}))" if row is not None else f"({values})"
    source = "\n".join(
        ["def read(part, at, count):", "    out = []", "    append = out.append", "    for _ in range(count):"]
        + [f"        {line}" for line in body]
        + [f"        append({make})",
           "    if at != len(part):",
           "        raise PipelineError('malformed record part: a length past the end, or trailing bytes', code=CODE)",
           "    return out"])
    exec(source, env)
    return env["read"]


def records_reader(schema: str, row: type | None = None, order: Sequence[int] | None = None) -> Callable[[bytes], list]:
    """decode_records for the parts an op documents with this schema, rows
    made as `row` (a tuple subclass) of the columns in `order`. The header is
    still checked: a part of another schema is decoded as what it says."""
    header = bytes((len(schema),)) + schema.encode("ascii")
    reader = _row_reader(header[1:], row, order)
    at = len(header) + 4

    def read(part: bytes) -> list:
        if not part.startswith(header):
            return decode_records(part)
        try:
            return reader(part, at, _u4_from(part, at - 4)[0])
        except (IndexError, struct.error, UnicodeDecodeError) as exc:
            raise PipelineError(f"malformed record part: {exc}", code=CODE_BAD_REQUEST) from None
    return read


def decode_records(part: bytes) -> list[tuple]:
    """The rows of a record part, as tuples (strings: bytes for s, str for t)."""
    try:
        at = 1 + part[0]
        schema = part[1:at]
        reader = _readers.get(schema)
        if reader is None:
            reader = _readers.setdefault(schema, _row_reader(schema)) if len(_readers) < 64 else _row_reader(schema)
        (count,) = _u4_from(part, at)
        return reader(part, at + 4, count)
    except (IndexError, struct.error, UnicodeDecodeError) as exc:
        raise PipelineError(f"malformed record part: {exc}", code=CODE_BAD_REQUEST) from None


def encode_records(schema: str, rows: Sequence[tuple]) -> bytes:
    """A record part (the fallbacks and tests write what the C helpers write)."""
    out = [bytes((len(schema),)), schema.encode("ascii"), _u4(len(rows))]
    for row in rows:
        for letter, value in zip(schema, row, strict=True):
            if letter in "st":
                data = value.encode("utf-8") if letter == "t" else value
                out += (_u4(len(data)), data)
            else:
                out.append(struct.pack("<" + letter, value))
    return b"".join(out)


def raise_for(response: Response) -> None:
    """PipelineError for an error response: the message, code, and what its
    error record names (op, input index or None, detail)."""
    if not response.code:
        return
    op, index, detail = "", None, response.message
    if response.parts:
        try:
            (op_b, index, detail_b), = decode_records(response.parts[0])
            op, detail = op_b.decode("utf-8", "replace"), detail_b.decode("utf-8", "replace")
        except (PipelineError, ValueError):
            pass
    name = CODE_NAMES.get(response.code, "error")
    raise PipelineError(f"{response.message} ({name})", code=response.code, op=op,
                        input=None if index is None or index < 0 else index, detail=detail)
