"""build_markdown in pure Python: the same bytes, limits and errors as
lib/aggregate.c (docs/build-markdown.md)."""
from __future__ import annotations

import errno as _errno
import functools
import os
import re
import stat

from slopfast.errors import PipelineError
from slopfast.wire import (CODE_LIMIT, MODE_DEFAULT, MODE_FULL, MODE_SKELETON, SKIP_BINARY, SKIP_NONE, SKIP_OUTPUT,
                           SKIP_SPECIAL, SKIP_SYMLINK, SKIP_TOO_LARGE, SNIFF_BYTES, Input)

TYPE_CHECKING = False   # typing.TYPE_CHECKING, without importing typing (its cost is start-up)
if TYPE_CHECKING:
    from typing import Callable, Iterable, NamedTuple, Sequence
else:
    from slopfast._named import NamedTuple

SEPARATOR = b"\n\n---\n\n"

# The limits of lib/op.h that build_markdown meets (tests/test_aggregate.py
# checks them against it). Both paths apply them alike.
LIMIT_INPUTS = 1 << 20              # inputs per request: the native path sends more in several
LIMIT_NAME_BYTES = (1 << 16) - 1    # an item's path
LIMIT_REQUEST_BYTES = 1 << 32       # one request: the native path splits to stay under it
LIMIT_INPUT_BYTES = 1 << 31         # an item's content, read from a file or inline: past it EFBIG
LIMIT_OUTPUT_BYTES = 1 << 33        # the response: document + 8-byte length, skipped records part
# The response besides the document: its length field, the three record
# parts' headers (length, column count, schema, row count) and part 3's row.
RESPONSE_OVERHEAD = 8 + (8 + 1 + 2 + 4) + (8 + 1 + 4 + 4) + (8 + 1 + 6 + 4 + 36)
UNREADABLE_RECORD_BYTES = 8         # "Ii": U4 index, S4 errno
FILE_RECORD_BYTES = 21              # "IBQQ": U4 index, U1 skip, U8 value, U8 tokens

# O_NONBLOCK: a FIFO opens without waiting for a writer (then it is refused,
# unread); O_NOCTTY: a terminal never becomes the controlling one.
_OPEN_FLAGS = os.O_RDONLY
for _flag in ("O_BINARY", "O_NONBLOCK", "O_NOCTTY", "O_CLOEXEC"):
    _OPEN_FLAGS |= getattr(os, _flag, 0)
_READ_CHUNK = 1 << 20
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def output_limit_error() -> PipelineError:
    """What the native path raises for a document past LIMIT_OUTPUT_BYTES."""
    detail = f"output larger than the limit of {LIMIT_OUTPUT_BYTES} bytes"
    return PipelineError(f"aggregate: {detail} (limit exceeded)", code=CODE_LIMIT, op="aggregate", detail=detail)


def path_limit_error(length: int) -> PipelineError:
    """What the native path raises for an item path past LIMIT_NAME_BYTES."""
    detail = f"input path of {length} bytes; the limit is {LIMIT_NAME_BYTES}"
    return PipelineError(f"{detail} (limit exceeded)", code=CODE_LIMIT, detail=detail)


def response_bytes(document: bytes, unreadable: int, files: int) -> int:
    """The size of the native response's parts for this document."""
    return len(document) + RESPONSE_OVERHEAD + UNREADABLE_RECORD_BYTES * unreadable + FILE_RECORD_BYTES * files


# The patterns below are compiled on first use, not on import: compiling them
# all took the import about 2 ms, and the native path uses none of them.
_re = functools.cache(re.compile)

# A backtick run that could close a fence: alone on its line behind at most
# three spaces, followed only by spaces or tabs. Lines end at \n, \r\n or \r.
_CLOSING_RUN = rb"(?:\A|(?<=[\r\n])) {0,3}(`{3,})[ \t]*(?=[\r\n]|\Z)"
# The same without lone CRs, anchored by MULTILINE (much faster to scan).
_CLOSING_RUN_LF = rb"(?m)^ {0,3}(`{3,})[ \t]*\r?$"
_BACKTICK_RUN = rb"`+"


def fence_length(body: bytes) -> int:
    if b"```" not in body:
        return 3
    pattern = _re(_CLOSING_RUN if b"\r" in body.replace(b"\r\n", b"") else _CLOSING_RUN_LF)
    longest = max((len(m.group(1)) for m in pattern.finditer(body)), default=0)
    return longest + 1 if longest >= 3 else 3


EMPTY_PATH_HEADING = b"(empty path)"   # plain text, no code span: no path looks like it

# What shown_path escapes: a backslash, C0 controls, DEL, U+FFFE, U+FFFF and
# (as surrogateescape decodes them) bytes outside valid UTF-8.
_PATH_ESCAPES = "[\\\\\x00-\x1f\x7f\ufffe\uffff\udc80-\udcff]"


def _path_escape(m: re.Match) -> str:
    c = m.group()
    if c == "\\":
        return "\\\\"
    raw = c.encode("utf-8", "surrogateescape")
    return "".join(f"\\x{b:02x}" for b in raw)


def shown_path(path: bytes) -> bytes:
    """The path as every format shows it (lib/aggregate.c shown_path):
    backslash as \\\\, and \\xNN for each byte of a C0 control, DEL, U+FFFE,
    U+FFFF or of no valid UTF-8 sequence."""
    text = path.decode("utf-8", "surrogateescape")
    escapes = _re(_PATH_ESCAPES)
    if not escapes.search(text):
        return path
    return escapes.sub(_path_escape, text).encode("utf-8")


def unshow_path(shown: bytes) -> bytes:
    """The path bytes a shown path stands for (the reader's side of shown_path)."""
    return re.sub(rb"\\(\\|x([0-9a-f]{2}))", lambda m: bytes.fromhex(m.group(2).decode()) if m.group(2) else b"\\", shown)


def path_span(shown: bytes) -> bytes:
    """A code span showing the shown path verbatim (docs/build-markdown.md);
    an empty path is EMPTY_PATH_HEADING."""
    if not shown:
        return EMPTY_PATH_HEADING
    ticks = b"`" * (max((len(m) for m in _re(_BACKTICK_RUN).findall(shown)), default=0) + 1)
    ends = shown[:1], shown[-1:]
    pad = b"`" in ends or (ends == (b" ", b" ") and shown.strip(b" ") != b"")
    space = b" " if pad else b""
    return ticks + space + shown + space + ticks


# ---- text -------------------------------------------------------------------

_BOMS = (
    (b"\xff\xfe\0\0", "utf-32-le"), (b"\0\0\xfe\xff", "utf-32-be"),
    (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"), (b"\xef\xbb\xbf", "utf-8"),
)


def bom_codec(data: bytes) -> tuple[int, str] | None:
    """(BOM length, codec) of the BOM `data` starts with (UTF-32 before UTF-16)."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return len(bom), codec
    return None


def wide_bom(data: bytes) -> bool:
    """A UTF-16 or UTF-32 BOM: such a file is text, whatever NULs it holds."""
    found = bom_codec(data)
    return found is not None and found[1] != "utf-8"


def text_of(data: bytes) -> bytes:
    """The content as UTF-8 text (lib/aggregate.c text_of): BOM dropped,
    UTF-16/32 with a BOM decoded, invalid sequences as U+FFFD."""
    found = bom_codec(data)
    if found is not None:
        data, codec = data[found[0]:], found[1]
        if codec != "utf-8":
            return data.decode(codec, "replace").encode("utf-8", "surrogatepass")
    try:
        data.decode("utf-8")
        return data
    except UnicodeDecodeError:
        return data.decode("utf-8", "replace").encode("utf-8")


_LINE = rb"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+"


def numbered(body: bytes) -> bytes:
    """Each line (ending at LF, CR LF or a lone CR) prefixed with its number,
    right-aligned to the last number's width, and two spaces."""
    if b"\r" not in body or b"\r" not in body.replace(b"\r\n", b""):   # no lone CR: lines end at LF (split)
        if not body:
            return body
        lines = body.split(b"\n")
        end = b""
        if not lines[-1]:
            lines.pop()
            end = b"\n"
        width = len(str(len(lines)))
        return b"\n".join([b"%*d  %s" % (width, n, line) for n, line in enumerate(lines, 1)]) + end
    lines = _re(_LINE).findall(body)
    width = len(str(len(lines)))
    return b"".join([b"%*d  %s" % (width, n, line) for n, line in enumerate(lines, 1)])


# ---- xml and json -------------------------------------------------------------

# Between CDATA runs: CR, ">" after "]]", C0 controls but TAB and LF, U+FFFE,
# U+FFFF, bytes outside valid UTF-8 (surrogateescape).
_XML_SPECIAL = "((?<=\\]\\])>|[\x00-\x08\x0b-\x1f\ufffe\uffff\udc80-\udcff])"


def _xml_special(c: str) -> str:
    if c == "\r":
        return "&#13;"
    if c == ">":
        return "&gt;"
    return "".join(f'<byte hex="{b:02x}"/>' for b in c.encode("utf-8", "surrogateescape"))


# What makes a valid UTF-8 body leave its one CDATA run (CR is in the range).
_XML_BYTES_SPECIAL = rb"[\x00-\x08\x0b-\x1f]|\]\]>|\xef\xbf[\xbe\xbf]"


def xml_content(body: bytes) -> bytes:
    """Content as XML text that parses back to exactly its bytes (lib/aggregate.c xml_content)."""
    if not body:
        return body
    if not _re(_XML_BYTES_SPECIAL).search(body):
        try:
            body.decode("utf-8")
            return b"<![CDATA[" + body + b"]]>"      # the common case: one run
        except UnicodeDecodeError:
            pass
    text = body.decode("utf-8", "surrogateescape")
    parts = _re(_XML_SPECIAL).split(text)
    out = []
    for i, part in enumerate(parts):
        if i % 2:
            out.append(_xml_special(part))
        elif part:
            out.append("<![CDATA[" + part + "]]>")
    return "".join(out).encode("utf-8")


def xml_escaped(shown: bytes) -> bytes:
    return shown.replace(b"&", b"&amp;").replace(b"<", b"&lt;").replace(b">", b"&gt;")


_JSON_SPECIAL = '["\\\\\x00-\x1f\udc80-\udcff]'
_JSON_SHORT = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def _json_escape(m: re.Match) -> str:
    c = m.group()
    return _JSON_SHORT.get(c) or f"\\u{ord(c):04x}"


def json_string(data: bytes) -> bytes:
    """A JSON string of the bytes (lib/aggregate.c json_string); a byte NN
    outside valid UTF-8 is \\udcNN."""
    try:      # valid UTF-8: the json module's own escaping is this one (C, and much faster)
        import json   # here: `import slopfast` must not load it (tests/test_startup.py)
        return json.dumps(data.decode("utf-8"), ensure_ascii=False).encode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("utf-8", "surrogateescape")
    return ('"' + _re(_JSON_SPECIAL).sub(_json_escape, text) + '"').encode("utf-8")


# ---- the tree and summary line at the end (lib/aggregate.c write_footer) -------------

def tree_text(shown: Sequence[bytes]) -> bytes:
    """A line per directory and file: the directories every file shares on
    the first line, then each file under the directories that differ from
    the previous file's, two spaces a level, in document order."""
    if not shown:
        return b""
    # Each path is split in each of the two passes, not kept split: a list
    # of parts per file took a 50,000-file tree's peak to the 64 MiB line.
    shared = shown[0].split(b"/")[:-1]
    for path in shown:
        dirs = path.split(b"/")[:-1]
        n = 0
        while n < min(len(shared), len(dirs)) and shared[n] == dirs[n]:
            n += 1
        shared = shared[:n]
    k = len(shared)
    base = 1 if k else 0
    lines = [b"/".join(shared) + b"/\n"] if k else []
    prev: list[bytes] = shared
    for path in shown:
        parts = path.split(b"/")
        dirs, name = parts[:-1], parts[-1]
        same = 0
        while same < min(len(prev), len(dirs)) and prev[same] == dirs[same]:
            same += 1
        same = max(same, k)
        for j in range(same, len(dirs)):
            lines.append(b"  " * (base + j - k) + dirs[j] + b"/\n")
        lines.append(b"  " * (base + len(dirs) - k) + name + b"\n")
        prev = dirs
    return b"".join(lines)


def summary_line(files: Sequence[tuple[bytes, int]]) -> bytes:
    count, size = len(files), sum(n for _, n in files)
    return b"%d file%s, %d byte%s" % (count, b"" if count == 1 else b"s", size, b"" if size == 1 else b"s")


def footer(fmt: str, files: Sequence[tuple[bytes, int]], after_section: bool) -> bytes:
    """The tree of `files` ((path, bytes read)) and the summary line, before the closing wrapper."""
    tree = tree_text([shown_path(p) for p, _ in files])
    summary = summary_line(files)
    if fmt == "markdown":
        fence = b"`" * fence_length(tree)
        return (SEPARATOR if after_section else b"") + b"## Files\n\n" + fence + b"\n" + tree + fence + b"\n\n" + summary
    if fmt == "xml":
        return b"\n<files>\n" + xml_escaped(tree) + b"</files>\n<summary>" + summary + b"</summary>"
    if fmt == "json":
        return b'\n], "tree": ' + json_string(tree) + b', "summary": "' + summary + b'"}'
    return (b"\n" if after_section else b"") + b"Files:\n" + tree + summary


def encode_tree_files(files: Iterable[tuple[bytes, int]]) -> bytes:
    """The op's tree_files parameter: (U4 length, path, U8 bytes) each, in one
    buffer (no piece per file: a tree may have hundreds of thousands)."""
    import struct
    length, size = struct.Struct("<I").pack, struct.Struct("<Q").pack
    out = bytearray()
    for p, n in files:
        out += length(len(p))
        out += p
        out += size(n)
    return bytes(out)


FORMATS = ("markdown", "xml", "json", "plain")
# (open, separator, close) of each format
WRAPPERS = {
    "markdown": (b"", SEPARATOR, b""),
    "xml": (b"<documents>", b"", b"\n</documents>"),
    "json": (b"[", b",", b"\n]"),
    "plain": (b"", b"\n", b""),
}


def section(fmt: str, path: bytes, body: bytes, index: int, languages: dict[bytes, bytes]) -> bytes:
    """One input's section in format `fmt` (no separator)."""
    shown = shown_path(path)
    if fmt == "markdown":
        fence = b"`" * fence_length(body)
        return b"".join((b"### ", path_span(shown), b"\n\n", fence, language(path, languages), b"\n", body, b"\n", fence))
    if fmt == "xml":
        return b"".join((b'\n<document index="', str(index).encode(), b'">\n<source>', xml_escaped(shown),
                         b"</source>\n<document_content>\n", xml_content(body), b"\n</document_content>\n</document>"))
    if fmt == "json":
        return b'\n{"path": ' + json_string(shown) + b', "content": ' + json_string(body) + b"}"
    return shown + b"\n---\n" + body + b"\n\n---"


def path_suffix(path: bytes) -> bytes:
    name = path.rsplit(b"/", 1)[-1]
    i = name.rfind(b".")
    return name[i + 1 :] if 0 < i < len(name) - 1 else b""


def _safe_info(tag: bytes) -> bool:
    if any(c == 0x60 or c <= 0x20 or c == 0x7F for c in tag):
        return False
    try:
        tag.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def language(path: bytes, languages: dict[bytes, bytes]) -> bytes:
    suffix = path_suffix(path)
    tag = languages.get(suffix, suffix)
    return tag if _safe_info(tag) else b""


def _error(code: int) -> OSError:
    return OSError(code, os.strerror(code))


class Checks(NamedTuple):
    """The load checks (lib/op.h LoadChecks): decided on the open descriptor
    and the bytes read from it."""
    nofollow: bool = False   # O_NOFOLLOW: a symlink is SKIP_SYMLINK
    sniff: bool = False      # a NUL byte in the first SNIFF_BYTES: SKIP_BINARY
    max_bytes: int = 0       # past it SKIP_TOO_LARGE; 0: only LIMIT_INPUT_BYTES (EFBIG)
    bom_text: bool = False   # a UTF-16/32 BOM makes a file text: not sniffed (the op sets it unless raw)
    avoid: "tuple[int, int] | None" = None   # (st_dev, st_ino) never read, in place of out_fd's (param avoid)


class Skip(Exception):
    """A file the checks leave out: `reason` (wire.SKIP_*) and its value."""

    def __init__(self, reason: int, value: int = 0):
        super().__init__(reason, value)
        self.reason = reason
        self.value = value


def _nofollow_refused(err: int) -> bool:   # O_NOFOLLOW met a symlink: ELOOP on Linux, EMLINK on BSDs
    return err in (_errno.ELOOP, _errno.EMLINK)


def read_input(item: Input, checks: Checks | None = None, avoid: tuple[int, int] | None = None) -> bytes:
    """The bytes of an input; OSError (with errno) when it cannot be read, as
    lib/core.c's input_load: only a regular file of at most LIMIT_INPUT_BYTES
    is read, checked on the open descriptor before any byte is (a directory
    EISDIR, anything else EINVAL, too big EFBIG), and the read stops past the
    limit (a file that grows). Inline content past the limit is EFBIG too.
    With `checks`, Skip for a file they leave out (a special file is one,
    never read; `avoid` is the output file's (st_dev, st_ino))."""
    if item.data is not None:
        if len(item.data) > LIMIT_INPUT_BYTES:
            raise _error(_errno.EFBIG)
        return item.data
    if b"\0" in item.path:
        raise _error(_errno.ENOENT)
    try:
        fd = os.open(item.path, _OPEN_FLAGS | (_NOFOLLOW if checks and checks.nofollow else 0))
    except OSError as exc:
        if checks and checks.nofollow and _nofollow_refused(exc.errno):
            raise Skip(SKIP_SYMLINK) from None
        raise
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise _error(_errno.EISDIR)
        if not stat.S_ISREG(st.st_mode):
            if checks:
                raise Skip(SKIP_SPECIAL, stat.S_IFMT(st.st_mode))
            raise _error(_errno.EINVAL)
        if checks and avoid == (st.st_dev, st.st_ino):
            raise Skip(SKIP_OUTPUT)
        cap = LIMIT_INPUT_BYTES
        if checks and checks.max_bytes:
            if st.st_size > checks.max_bytes:
                raise Skip(SKIP_TOO_LARGE, st.st_size)
            cap = min(cap, checks.max_bytes)
        if st.st_size > LIMIT_INPUT_BYTES:
            raise _error(_errno.EFBIG)
        chunks, total, want = [], 0, st.st_size + 1   # one past the size: a file that grew reads on
        while True:
            chunk = os.read(fd, want)
            if not chunk:
                break
            total += len(chunk)
            if total > cap:
                if cap < LIMIT_INPUT_BYTES:
                    raise Skip(SKIP_TOO_LARGE, total)
                raise _error(_errno.EFBIG)
            chunks.append(chunk)
            want = max(want - len(chunk), _READ_CHUNK)
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if checks and checks.sniff and b"\0" in data[:SNIFF_BYTES] and not (checks.bom_text and wide_bom(data)):
            raise Skip(SKIP_BINARY)
        return data
    finally:
        os.close(fd)


def file_identity(fd: int) -> tuple[int, int] | None:
    """(st_dev, st_ino) of the regular file open as fd, else None (as lib/core.c)."""
    if os.name == "nt":
        return None
    try:
        st = os.fstat(fd)
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISREG(st.st_mode) else None


if TYPE_CHECKING:
    Summariser = Callable[[bytes, bytes, bool], bytes]


# Token counts (lib/aggregate.c, "Token counts"): a unit of the document
# begins after a LF at an ASCII character that is not a space, a control or
# '/'; tiktoken's o200k and cl100k pieces never cross such a point.
OWNER_WRAPPER = -1                  # the carry began in the wrapper (or a tree)
OWNER_CARRIED = -2                  # in the unit the request before left open
_UNIT_START = re.compile(rb"\n[\x21-\x2e\x30-\x7e]")


class Counts(NamedTuple):
    """The token counts of one request (part 2's tokens column, part 3's tail)."""
    per_input: dict[int, int]             # input index -> tokens of the units that begin in its section
    tokens: int                           # all counted in the request
    carried: int                          # of which: the unit continued from count_carry
    owner: int                            # the carry began in this input (or OWNER_*)
    carry: bytes                          # the unit not ended yet


class Counting:
    """The document's tokens as it is written, unit by unit (as lib/aggregate.c):
    `count(text)` is tiktoken's count of bytes read as UTF-8 with replacement."""

    def __init__(self, count: Callable[[bytes], int], carry: bytes = b""):
        self.count = count
        self.carry = bytearray(carry)
        self.owner = OWNER_CARRIED if carry else OWNER_WRAPPER
        self.last = carry[-1:] or b"\n"
        self.tokens = self.carried = 0
        self.per_input: dict[int, int] = {}

    def _add(self, text: bytes, owner: int) -> None:
        n = self.count(bytes(text))
        self.tokens += n
        if owner == OWNER_CARRIED:
            self.carried += n
        elif owner >= 0:
            self.per_input[owner] = self.per_input.get(owner, 0) + n

    def feed(self, text: bytes, owner: int) -> None:
        if not text:
            return
        if not self.carry:
            self.owner = owner
        probe = self.last + text            # a match at probe[j] begins a unit at text[j]
        self.last = text[-1:]
        found = _UNIT_START.search(probe)
        if found is None:
            self.carry += text
            return
        first = found.start()
        last = first
        at = probe.rfind(b"\n")
        while at > first:
            if _UNIT_START.match(probe, at):
                last = at
                break
            at = probe.rfind(b"\n", 0, at)
        if self.carry or first:
            self._add(self.carry + text[:first], self.owner)
        self.carry = bytearray()
        if last > first:
            self._add(text[first:last], owner)
        self.owner = owner
        self.carry += text[last:]

    def counts(self) -> Counts:
        return Counts(self.per_input, self.tokens, self.carried, self.owner, bytes(self.carry))


class Built(NamedTuple):
    """What the aggregate op answers (lib/aggregate.c, its parts in order)."""
    document: bytes                       # b"" when written to out_fd
    unreadable: list[tuple[int, int]]     # (index, errno)
    files: list[tuple[int, int, int]]     # (index, wire.SKIP_*, bytes taken or the skip's value)
    written: int                          # document bytes made (written to out_fd, or len(document))
    write_errno: int                      # a failed write to out_fd stopped the call (0: none)
    counts: Counts | None = None          # with counting


class _Writer:
    """Sections to a descriptor in writes of about FLUSH_BYTES (as lib/aggregate.c)."""

    def __init__(self, fd: int):
        self.fd, self.pending, self.size, self.written, self.errno = fd, [], 0, 0, 0

    def add(self, piece: bytes) -> None:
        self.pending.append(piece)
        self.size += len(piece)
        if self.size >= FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        data = b"".join(self.pending) if len(self.pending) != 1 else self.pending[0]
        self.pending, self.size = [], 0
        view = memoryview(data)
        try:
            while view:
                n = os.write(self.fd, view[: 1 << 30])
                view = view[n:]
                self.written += n
        except OSError as exc:
            self.errno = exc.errno or _errno.EIO


FLUSH_BYTES = 1 << 20


def build(inputs: Sequence[Input], mode: int, languages: dict[bytes, bytes], summarise: Summariser,
          checks: Checks | None = None, out_fd: int | None = None, continues: bool = False, *,
          fmt: str = "markdown", raw: bool = False, line_numbers: bool = False,
          open: bool = True, close: bool = True, first_index: int = 1,
          tree: bool = False, tree_files: Sequence[tuple[bytes, int]] = (),
          counting: Counting | None = None) -> Built:
    """The aggregate op: the document (or, with out_fd, the document written
    there as it is made), the (index, errno) of each input that could not be
    read, the (index, skip, value) of every other; PipelineError past
    LIMIT_OUTPUT_BYTES for a document in memory, as the native path.
    `open` / `close` write the format's wrapper; `first_index` numbers the
    first section (xml); `continues`: a section precedes this call's.
    `tree` (with `close`): the tree and summary of `tree_files` (earlier
    calls' (path, bytes)) and this call's files at the end. `counting`
    counts the document's tokens as it is made."""
    if checks is not None:
        checks = checks._replace(bom_text=not raw)
    avoid = None
    if checks:
        avoid = checks.avoid or (file_identity(out_fd) if out_fd is not None else None)
    writer = _Writer(out_fd) if out_fd is not None else None
    opening, separator, closing = WRAPPERS[fmt]
    if tree and fmt == "json":
        opening = b'{"files": ['
    sections: list[bytes] = [opening] if open and opening else []
    if counting is not None and sections:
        counting.feed(opening, OWNER_WRAPPER)
    if writer is not None and sections:
        writer.add(sections.pop())
    unreadable, files = [], []
    size = sum(map(len, sections))
    first = not continues
    index = first_index
    for position, item in enumerate(inputs):
        if writer is not None and writer.errno:
            break
        try:
            data = read_input(item, checks, avoid)
        except Skip as skip:
            files.append((position, skip.reason, skip.value))
            continue
        except OSError as exc:
            unreadable.append((position, exc.errno or _errno.EIO))
            continue
        item_mode = item.mode or mode
        text = data if raw else text_of(data)
        if item_mode in (MODE_FULL, MODE_DEFAULT):
            body = numbered(text) if line_numbers else text
        else:
            body = summarise(item.path, text, item_mode == MODE_SKELETON)
        piece = section(fmt, item.path, body, index, languages)
        if not first:
            piece = separator + piece
        first = False
        index += 1
        files.append((position, SKIP_NONE, len(data)))
        if counting is not None:
            counting.feed(piece, position)
        if writer is not None:
            writer.add(piece)
            continue
        sections.append(piece)
        size += len(piece)
        if size + 8 > LIMIT_OUTPUT_BYTES:   # stop early: the native path stops here too
            raise output_limit_error()
    if close and not (writer is not None and writer.errno):
        end = closing
        if tree:
            taken = list(tree_files) + [(inputs[i].path, n) for i, skip, n in files if skip == SKIP_NONE]
            end = footer(fmt, taken, not first) + (b"" if fmt == "json" else closing)
        if counting is not None:
            counting.feed(end, OWNER_WRAPPER)
        if writer is not None:
            writer.add(end)
        else:
            sections.append(end)
    counts = counting.counts() if counting is not None else None
    if writer is not None:
        if not writer.errno:
            writer.flush()
        return Built(b"", unreadable, files, writer.written, writer.errno, counts)
    document = b"".join(sections)
    if response_bytes(document, len(unreadable), len(files)) > LIMIT_OUTPUT_BYTES:
        raise output_limit_error()
    return Built(document, unreadable, files, len(document), 0, counts)
