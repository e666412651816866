"""The aggregate op: many files into one markdown document with
`build_markdown` (docs/build-markdown.md)."""
from __future__ import annotations

import errno as _errno
import os
import stat
import struct
from array import array
from collections.abc import Iterable, Mapping, Sequence

from . import _env, dispatch, native, wire
from .errors import BackendUnavailable, InputError, SlopfastError
from .fallbacks import aggregate as _fallback
from .fallbacks import summary as _summary

TYPE_CHECKING = False   # typing.TYPE_CHECKING, without importing typing (its cost is start-up)
if TYPE_CHECKING:
    from typing import Any, Literal, NamedTuple

    Mode = Literal["full", "summary", "skeleton"]
    Format = Literal["markdown", "xml", "json", "plain"]
else:
    from ._named import NamedTuple

_MODES = {"full": wire.MODE_FULL, "summary": wire.MODE_SUMMARY, "skeleton": wire.MODE_SKELETON}

# Path items are read by whichever path runs; for the size class we assume
# this many bytes each rather than stat every file.
ASSUMED_FILE_BYTES = 4096


class BuildResult(NamedTuple):
    document: bytes
    skipped: list[tuple[str, OSError]]   # (path, error) of each unreadable input


def _encode_path(path: Any) -> bytes:
    if isinstance(path, bytes):
        return path
    return os.fsencode(os.fspath(path)) if isinstance(path, os.PathLike) else str(path).encode("utf-8", "surrogateescape")


def _encode_content(content: Any) -> bytes | None:
    if content is None or isinstance(content, bytes):
        return content
    if isinstance(content, str):
        return content.encode("utf-8", "surrogateescape")
    if isinstance(content, (bytearray, memoryview)):
        return bytes(content)
    raise TypeError(f"item content must be str or bytes, not {type(content).__name__}")


def _mode_code(mode: Any) -> int:
    if mode is None:
        return wire.MODE_DEFAULT
    try:
        return _MODES[mode]
    except KeyError:
        raise ValueError(f"mode must be one of {sorted(_MODES)}, not {mode!r}") from None


def to_input(item: Any) -> wire.Input:
    """An item as the wire sees it: a path, (path, content), a mapping or an object."""
    if isinstance(item, (str, bytes, os.PathLike)):
        return wire.Input(_encode_path(item), None)
    if isinstance(item, tuple):
        if len(item) not in (2, 3):
            raise TypeError("a tuple item is (path, content) or (path, content, mode)")
        return wire.Input(_encode_path(item[0]), _encode_content(item[1]), _mode_code(item[2] if len(item) == 3 else None))
    if isinstance(item, Mapping):
        return wire.Input(_encode_path(item["path"]), _encode_content(item.get("content")), _mode_code(item.get("mode")))
    if hasattr(item, "path"):
        return wire.Input(_encode_path(item.path), _encode_content(getattr(item, "content", None)), _mode_code(getattr(item, "mode", None)))
    raise TypeError(f"cannot use a {type(item).__name__} as a build_markdown item")


def _languages(languages: Mapping[str, str] | None) -> dict[bytes, bytes]:
    if not languages:
        return {}
    out = {}
    for suffix, name in languages.items():
        s, n = suffix.lstrip(".").encode(), name.encode()
        if b"\t" in s + n or b"\n" in s + n:
            raise ValueError("language names and suffixes cannot hold tabs or line ends")
        out[s] = n
    return out


def _batches(ops, items, per_input: int = 0) -> Iterable[tuple[list[int], list[wire.Input]]]:
    """(index, input) pairs in requests within the wire's limits
    (LIMIT_INPUTS inputs, LIMIT_REQUEST_BYTES bytes): the indices and the
    inputs of each request; at least one request. `per_input`: the bytes a
    parameter sent later takes per input."""
    base = wire.request_base_bytes(ops)
    index: list[int] = []
    batch: list[wire.Input] = []
    size = base
    for i, item in items:
        cost = 6 + per_input + len(item.path) + (0 if item.data is None else 8 + len(item.data))   # its v3 bytes
        if batch and (len(batch) == _fallback.LIMIT_INPUTS or size + cost > _fallback.LIMIT_REQUEST_BYTES):
            yield index, batch
            index, batch, size = [], [], base
        index.append(i)
        batch.append(item)
        size += cost
    yield index, batch


class Style(NamedTuple):
    """How the document is written (docs/build-markdown.md): the format, raw
    bytes or text, line numbers."""
    fmt: str = "markdown"
    raw: bool = False
    line_numbers: bool = False
    tree: bool = False

    def kwargs(self) -> dict[str, Any]:
        return {"fmt": self.fmt, "raw": self.raw, "line_numbers": self.line_numbers, "tree": self.tree}

    @property
    def closes(self) -> bool:
        """Does the document end with something (a wrapper, the tree)?"""
        return self.tree or self.fmt in ("xml", "json")


DEFAULT_STYLE = Style()


def _style(format: str, raw: bool, line_numbers: bool, tree: bool = False) -> Style:
    if format not in _fallback.FORMATS:
        raise ValueError(f"format must be one of {list(_fallback.FORMATS)}, not {format!r}")
    return Style(format, bool(raw), bool(line_numbers), bool(tree))


class CountSpec(NamedTuple):
    """Count the document's tokens: in this encoding, with these ranks (None:
    found as count_tokens finds them), on this many threads (None: as
    SLOPFAST_THREADS says, else the op's default). `only`: the document is
    made to be counted and thrown away, so the native op takes summaries
    the count cache knows from it, and writes them short (docs/tokens.md,
    "The count cache"). `ahead` (a mode): the native op also looks each
    full section's summary in that mode up in the count cache, and puts
    what it finds into `known` (path -> entry); a count-only document
    takes those from `known` without reading the files."""
    encoding: str = "o200k_base"
    ranks: str | None = None
    threads: int | None = None
    only: bool = False
    ahead: str | None = None
    known: dict[bytes, int] | None = None

    def counter(self):
        """A function bytes -> tokens (either path: their counts are equal)."""
        from . import tokens
        return lambda data: tokens.count_tokens_many([data], self.encoding, ranks=self.ranks)[0]

    def native_counter(self):
        from . import tokens
        return lambda data: tokens._run_native([data], self.encoding, self.ranks)[0]

    def fallback_counter(self):
        from . import tokens
        from .fallbacks import tokens as fallback_tokens
        ranks = lambda: tokens._ranks(self.encoding, self.ranks).ranks   # noqa: E731
        enc = fallback_tokens.encoding(self.encoding, ranks)
        return lambda data: len(enc.encode_ordinary(data.decode("utf-8", "replace")))

    def blob(self) -> bytes:
        from . import tokens
        return tokens._ranks(self.encoding, self.ranks).blob

    def vocab(self) -> int | None:
        """The native vocabulary's index in this thread's context (None: cannot count natively)."""
        from . import tokens
        return tokens._vocab(self.encoding, self.ranks)


class _Tally:
    """The counts of the requests of one document, in order: each request
    goes on with the unit the one before left open (its carry). Files are
    keyed by the caller (`key_of` maps a request's input index to a key);
    WRAPPER collects the wrapper's tokens, CARRIED those of a unit begun
    before the first request."""

    WRAPPER, CARRIED = _fallback.OWNER_WRAPPER, _fallback.OWNER_CARRIED

    def __init__(self, carry: bytes = b""):
        self.per: dict[Any, int] = {}
        self.tokens = self.carried = self.wrapper = 0
        self.carry = carry
        self.owner: Any = self.CARRIED if carry else self.WRAPPER

    def give(self, key: Any, n: int) -> None:
        if key == self.WRAPPER:
            self.wrapper += n
        elif key == self.CARRIED:
            self.carried += n
        else:
            self.per[key] = self.per.get(key, 0) + n

    def add(self, counts: _fallback.Counts, key_of: Any) -> None:
        self.tokens += counts.tokens
        self.give(self.owner, counts.carried)
        for i, n in counts.per_input.items():
            self.give(key_of(i), n)
        if counts.owner != self.CARRIED:
            self.owner = self.WRAPPER if counts.owner == self.WRAPPER else key_of(counts.owner)
        self.carry = counts.carry

    def finish(self, count: Any, tail: bytes = b"") -> None:
        """Count the carry (and `tail`, what follows the last request), for its owner."""
        text = self.carry + tail
        if text:
            n = count(text)
            self.tokens += n
            self.give(self.owner, n)
        self.carry = b""


# SLOPFAST_THREADS=1: a request stays on one thread (by default a helper
# reads every other file beside the writer, or counts, lib/aggregate.c); a
# bad value is the op's error.
_THREADS = _env.reader("SLOPFAST_THREADS")
_ENTRY = struct.Struct("<Q")     # a count cache entry in the parameter known


def _params(mode: int, languages: dict[bytes, bytes], checks: _fallback.Checks | None,
            out_fd: int | None, style: Style = DEFAULT_STYLE) -> dict[str, str | bytes]:
    params: dict[str, str | bytes] = {"mode": wire.MODE_NAMES[mode]}
    if languages:
        params["lang"] = b"\n".join(k + b"\t" + v for k, v in languages.items())
    if checks is not None:
        params.update(nofollow=str(int(checks.nofollow)), sniff=str(int(checks.sniff)), max_bytes=str(checks.max_bytes))
        if checks.avoid:
            params["avoid"] = "%d:%d" % checks.avoid
    if out_fd is not None:
        params["out_fd"] = str(out_fd)
    if style.fmt != "markdown":          # the defaults are not sent: a markdown request is what it was
        params["format"] = style.fmt
    if style.raw:
        params["raw"] = "1"
    if style.line_numbers:
        params["line_numbers"] = "1"
    if style.tree:
        params["tree"] = "1"
    return params


def _native(inputs, mode: int, languages: dict[bytes, bytes], checks: _fallback.Checks | None = None,
            out_fd: int | None = None, continues: bool = False, *, style: Style = DEFAULT_STYLE,
            open: bool = True, close: bool = True, first_index: int = 1,
            tree_files: Iterable[tuple[bytes, int]] | None = None, count: CountSpec | None = None,
            carry: bytes = b"") -> _fallback.Built:
    """The native answer for any number of items, in as many requests as the
    wire's limits need, each continuing the document of the one before: the
    answer one request would give (the wrapper opened by the first, closed
    by the last, sections numbered on, the tree of all of them and of
    `tree_files` (earlier calls' files) written by the last). Inline content past
    LIMIT_INPUT_BYTES is not sent: EFBIG, as the C side (and the fallback)
    answers it. `count`: count the tokens too, going on with `carry`."""
    limit = _fallback.LIMIT_INPUT_BYTES
    unreadable = [(i, _errno.EFBIG) for i, item in enumerate(inputs) if item.data is not None and len(item.data) > limit]
    items = [(i, item) for i, item in enumerate(inputs) if item.data is None or len(item.data) <= limit]
    params = _params(mode, languages, checks, out_fd, style)
    threads = str(count.threads) if count is not None and count.threads else _THREADS()
    if threads is not None:
        params["threads"] = threads
    tally = cache = None
    if count is not None:
        vocab = count.vocab()
        if vocab is not None:
            params.update(vocab=str(vocab), encoding=count.encoding)
        else:       # no context to attach a vocabulary to (the subprocess transport): the ranks themselves
            params.update(ranks=count.blob(), encoding=count.encoding)
        tally = _Tally(carry)
        from . import count_cache
        cache = count_cache.for_encoding(count.encoding)
        if cache is not None:
            params["count_cache"] = cache.param
            if count.only:
                params["count_only"] = "1"
            if count.ahead is not None and count.known is not None:
                params["ahead"] = count.ahead
    wrapped = style.closes
    earlier = tree_files if tree_files is not None else ()    # earlier calls' files: read once, by the last request
    added: list[tuple[bytes, int]] = []                        # this call's files, for the tree
    documents: list[bytes] = []
    files: list[tuple[int, int, int]] = []
    written = write_errno = 0
    taken = 0
    known = "count_only" in params and count.known      # a parameter `known`, 8 bytes per input
    batches = _batches([("aggregate", params)], items, _ENTRY.size if known else 0)
    batch_pair = next(batches)
    while batch_pair is not None:
        index, batch = batch_pair
        batch_pair = next(batches, None)
        if continues:
            params["continues"] = "1"
        if wrapped:
            params["open"] = "1" if open else "0"
            params["close"] = "1" if close and batch_pair is None else "0"
            if first_index + taken != 1:
                params["first_index"] = str(first_index + taken)
            if style.tree and close and batch_pair is None:
                params["tree_files"] = _fallback.encode_tree_files(pair for part in (earlier, added) for pair in part)
        if tally is not None and tally.carry:
            params["count_carry"] = tally.carry
        if known:
            params["known"] = b"".join(_ENTRY.pack(count.known.get(item.path, 0)) for item in batch)
        document, bad, answered, totals, *cached = native.run([("aggregate", params)], batch)
        if cache is not None:
            cache.note(wire.decode_records(cached[0]))
        if "ahead" in params:
            found = wire.decode_records(cached[1])
            count.known.update((batch[j].path, value) for j, _, _, value in found)
            cache.note([(j, h0, h1, value, 1) for j, h0, h1, value in found])
        ((total, failed, tokens, carried, owner, left),) = wire.decode_records(totals)
        documents.append(document)
        unreadable += [(index[j], err) for j, err in wire.decode_records(bad)]
        answered_rows = wire.decode_records(answered)
        rows = [(index[j], skip, value) for j, skip, value, _ in answered_rows]
        files += rows
        if tally is not None:
            per = {j: n for j, skip, _, n in answered_rows if n}
            tally.add(_fallback.Counts(per, tokens, carried, owner, left), index.__getitem__)
        taken += sum(skip == wire.SKIP_NONE for _, skip, _ in rows)
        if style.tree:
            added += [(inputs[i].path, value) for i, skip, value in rows if skip == wire.SKIP_NONE]
        written += total
        continues = continues or taken > 0
        open = False
        if failed:
            write_errno = failed
            break
    unreadable.sort()
    files.sort()
    document = documents[0] if len(documents) == 1 else b"".join(documents)
    if out_fd is None and _fallback.response_bytes(document, len(unreadable), len(files)) > _fallback.LIMIT_OUTPUT_BYTES:
        raise _fallback.output_limit_error()
    counted = None
    if tally is not None:
        counted = _fallback.Counts(tally.per, tally.tokens, tally.carried, tally.owner, tally.carry)
    return _fallback.Built(document, unreadable, files, written, write_errno, counted)


def _variant(inputs: list[wire.Input], mode: int) -> str:
    """What changes the work: the modes in use, and reading files or not
    (a summary costs the fallback 10x what copying does; reading is I/O)."""
    modes = {i.mode or mode for i in inputs}
    return ",".join(wire.MODE_NAMES[m] for m in sorted(modes)) + (",files" if any(i.data is None for i in inputs) else "")


# Summaries on the fallback use md_outline's (markdown-it-py) and py_skeleton's
# (ast) fallbacks, imported on their first use: the dispatcher waits for its
# calibration budget before it pays for them.
_SUMMARY_IMPORTS = (f"{__package__}.fallbacks.md_outline", f"{__package__}.fallbacks.py_skeleton")


def _imports(variant: str) -> tuple[str, ...]:
    """The modules the fallback of a call of this variant imports on its first run."""
    summary = _SUMMARY_IMPORTS if "summary" in variant or "skeleton" in variant else ()
    return summary + (("tiktoken",) if "tokens" in variant else ())   # and builds its Encoding: 0.6 s


def _sample(args, budget: int):
    """Both paths on the first inputs, up to `budget` bytes (files counted as
    ASSUMED_FILE_BYTES), for calibrating a large aggregate."""
    inputs, mode, langs, *rest = args
    style = rest[0] if rest else DEFAULT_STYLE
    taken, size = [], 0
    for item in inputs:
        if taken and size >= budget:
            break
        piece = item if item.data is None or len(item.data) <= budget else item._replace(data=dispatch.line_sample(item.data, budget))
        taken.append(piece)
        size += ASSUMED_FILE_BYTES if piece.data is None else len(piece.data)
    return ((lambda: _native(taken, mode, langs, style=style)),
            (lambda: _fallback.build(taken, mode, langs, _summary.summarise, **style.kwargs())), size)


def build(
    items: Iterable[Any],
    *,
    mode: Mode = "full",
    languages: Mapping[str, str] | None = None,
    format: Format = "markdown",
    raw: bool = False,
    line_numbers: bool = False,
    tree: bool = False,
) -> BuildResult:
    """The document as bytes, plus the inputs that could not be read (skipped).
    `format`, `raw`, `line_numbers` and `tree` as for build_markdown."""
    inputs = [to_input(item) for item in items]
    for item in inputs:                # the wire's limit, on both paths
        if len(item.path) > _fallback.LIMIT_NAME_BYTES:
            raise _fallback.path_limit_error(len(item.path))
    mode_code = _mode_code(mode)
    langs = _languages(languages)
    style = _style(format, raw, line_numbers, tree)
    size = sum(ASSUMED_FILE_BYTES if i.data is None else len(i.data) for i in inputs)
    variant = _variant(inputs, mode_code) + ("" if style == DEFAULT_STYLE else f",{style.fmt}")
    built = dispatch.dispatch(
        "aggregate",
        size,
        lambda: _native(inputs, mode_code, langs, style=style),
        lambda: _fallback.build(inputs, mode_code, langs, _summary.summarise, **style.kwargs()),
        variant=variant, sample=_sample, sample_of=(inputs, mode_code, langs, style), imports=_imports(variant),
    )
    errors = []
    for index, err in built.unreadable:
        path = os.fsdecode(inputs[index].path)
        errors.append((path, InputError(err, os.strerror(err), path)))
    return BuildResult(built.document, errors)


def build_markdown(
    items: Iterable[Any],
    *,
    as_bytes: bool = False,
    mode: Mode = "full",
    languages: Mapping[str, str] | None = None,
    errors: Literal["raise", "skip"] = "raise",
    format: Format = "markdown",
    raw: bool = False,
    line_numbers: bool = False,
    tree: bool = False,
) -> str | bytes:
    """Aggregate files into one document (markdown unless `format` says
    "xml", "json" or "plain"; docs/build-markdown.md).

    An item is a path (read from disk), a (path, content) pair, a mapping with
    "path" and "content", or an object with those attributes; content is str
    or bytes. A third tuple element, a "mode" key or attribute sets the item's
    mode ("full", "summary", "skeleton"); `mode` sets the default. `languages`
    maps suffixes to fence language names ({"py": "python"}).

    errors="raise" raises InputError for the first unreadable file;
    errors="skip" leaves such files out. Content is written as UTF-8 text
    (a BOM dropped, UTF-16/32 with a BOM decoded, invalid bytes as U+FFFD)
    unless raw=True, which keeps its bytes exactly (as a str, invalid UTF-8
    then shows as U+FFFD). line_numbers=True numbers the lines of full-mode
    contents. tree=True ends the document with the tree of its files and a
    summary line ("N files, B bytes").
    """
    if errors not in ("raise", "skip"):
        raise ValueError("errors must be 'raise' or 'skip'")
    result = build(items, mode=mode, languages=languages, format=format, raw=raw, line_numbers=line_numbers, tree=tree)
    if errors == "raise" and result.skipped:
        raise result.skipped[0][1]
    return result.document if as_bytes else result.document.decode("utf-8", "replace")


# ---- directories into a file or stream ---------------------------------------------

class FileList(Sequence):
    """(path, bytes read) of each file in a document, in order: a sequence of
    tuples, equal to the list of the same tuples, kept packed (each path as
    UTF-8 in one buffer, its end and its size in arrays: about 60 bytes a
    file, where a list of tuples of str and int takes 150)."""

    __slots__ = ("_paths", "_ends", "_sizes")
    __hash__ = None    # type: ignore[assignment]  # mutable, as a list

    def __init__(self, items: Iterable[tuple[str, int]] = ()) -> None:
        self._paths = bytearray()
        self._ends = array("Q")
        self._sizes = array("q")
        for item in items:
            self.append(item)

    def append(self, item: tuple[str, int]) -> None:
        path, size = item
        self._paths += path.encode("utf-8", "surrogatepass")    # any str, lone surrogates too, round-trips
        self._ends.append(len(self._paths))
        self._sizes.append(size)

    def __len__(self) -> int:
        return len(self._sizes)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[k] for k in range(*index.indices(len(self)))]
        k = index + len(self) if index < 0 else index
        if not 0 <= k < len(self):
            raise IndexError("FileList index out of range")
        start = self._ends[k - 1] if k else 0
        return self._paths[start:self._ends[k]].decode("utf-8", "surrogatepass"), self._sizes[k]

    def __iter__(self) -> Any:
        paths, start = self._paths, 0
        for end, size in zip(self._ends, self._sizes):
            yield paths[start:end].decode("utf-8", "surrogatepass"), size
            start = end

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FileList):
            return (self._sizes, self._ends, self._paths) == (other._sizes, other._ends, other._paths)
        if isinstance(other, (list, tuple)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    def __repr__(self) -> str:
        return f"FileList({list(self)!r})"


class AggregateReport(NamedTuple):
    """What aggregate_paths wrote, file by file."""
    files: FileList                        # (path, bytes read) of each file in the document, in order
    skipped: list[Any]                     # slopfast.walk.Skipped: left out on purpose (binary, too large, ...)
    unreadable: list[tuple[str, OSError]]  # could not be read (the document is written without them)
    bytes_written: int                     # the document's size, its final newline included
    tokens: int | None = None              # with count_tokens: the document's tokens, all of it
    file_tokens: list[int] | None = None   # with count_tokens: the tokens of each file's section, as `files`
    stepped_down: dict[str, str] | None = None   # with budget: path -> "summary" or "listed" (only in the tree)


# A batch is sent once the walk has found this many files: the first small,
# so the native call starts at once (and the walk of the next batch overlaps
# it), then BATCH_FILES. Calls stay few, and large enough for the op to read
# on two threads: doubling from 32 instead took stdlib's 1,790 files in six
# calls, 7 ms slower in process (docs/benchmarks-cli.md).
FIRST_BATCH_FILES = 32
BATCH_FILES = 4096
BATCH_INLINE_BYTES = 8 << 20


def aggregate_paths(
    paths: Iterable[str | os.PathLike],
    output: Any,
    *,
    mode: Mode = "full",
    full: Iterable[str] = (),
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
    hidden: bool = False,
    gitignore: bool = True,
    default_ignores: bool = True,
    follow_symlinks: bool = False,
    max_file_size: int | None = 10 << 20,
    languages: Mapping[str, str] | None = None,
    on_event: Any = None,
    format: Format = "markdown",
    raw: bool = False,
    line_numbers: bool = False,
    tree: bool = False,
    count_tokens: bool | str = False,
    ranks: str | os.PathLike | None = None,
    budget: int | None = None,
    token_header: bool = False,
) -> AggregateReport:
    """Walk `paths` (files or directories) as `slopfast aggregate` does and
    write the document to `output`: a path (created or truncated), a
    descriptor, or a binary file object. The document is written as it is
    made, in bounded memory, and ends with a newline unless it is empty.

    The options are the command's (docs/cli.md): `full`, `include`,
    `exclude` are gitignore-style patterns (PatternError for a malformed
    one); `max_file_size=None` means no limit. `on_event(event)`, when
    given, sees each file's outcome as it is known: a slopfast.walk Found
    (path, rel, bytes), Skipped or Unreadable. `format`, `raw`,
    `line_numbers` and `tree` as for build_markdown.

    count_tokens=True (o200k_base) or an encoding name ("cl100k_base")
    counts the document's tokens exactly, as tiktoken's encode_ordinary of
    the whole document would: `tokens` in the report, and `file_tokens`,
    the tokens of each file's section (the rest is the wrapper and tree;
    docs/tokens.md, "Counts of a document"). `ranks` names the rank file
    (else found as count_tokens finds it).

    budget=N fits the document, tree and all, in N tokens (of count_tokens'
    encoding, o200k_base by default): files step down to a summary, then
    to a line in the tree, largest first; files matching `full` never do
    (docs/cli.md, "--budget"). `stepped_down` says which; BudgetError when
    even that does not fit. token_header=True starts the document with a
    line that gives its token count, that line included (not in json)."""
    from . import walk as _walk

    style = _style(format, raw, line_numbers, tree)
    count = _count_spec(count_tokens or budget is not None or token_header, ranks)
    if token_header and style.fmt == "json":
        raise ValueError("token_header: a json document has no place for a header line")

    full_patterns = _walk.compile_patterns(full, "--full")
    options = _walk.WalkOptions(
        hidden=hidden, gitignore=gitignore, include=_walk.compile_patterns(include, "--include"),
        exclude=_walk.compile_patterns(exclude, "--exclude"), max_file_size=max_file_size,
        follow_symlinks=follow_symlinks, default_ignores=default_ignores, check_files=False,
    )
    with _Output(output) as out:
        options.avoid = out.identity()
        names = [os.fspath(p) for p in paths]
        if budget is not None:
            report, levels = stream_budget(
                _walk.walk(names, options), out, budget, count, mode=mode, full=full_patterns,
                max_file_size=max_file_size, languages=languages, on_event=on_event, header=token_header,
                format=style.fmt, raw=style.raw, line_numbers=style.line_numbers)
            return report._replace(stepped_down=levels)
        run = stream_with_header if token_header else stream
        return run(_walk.walk(names, options), out, mode=mode, full=full_patterns,
                      max_file_size=max_file_size, languages=languages, on_event=on_event,
                      format=style.fmt, raw=style.raw, line_numbers=style.line_numbers, tree=style.tree,
                      count=count)


def _count_spec(count_tokens: bool | str, ranks: str | os.PathLike | None) -> CountSpec | None:
    if count_tokens is False or count_tokens is None:
        return None
    if not isinstance(count_tokens, (bool, str)):
        raise TypeError(f"count_tokens must be a bool or an encoding name, not {type(count_tokens).__name__}")
    from . import tokens
    encoding = "o200k_base" if count_tokens is True else tokens._check_encoding(count_tokens)
    spec = CountSpec(encoding, os.fspath(ranks) if ranks is not None else None)
    tokens.check_ranks(spec.encoding, spec.ranks)      # no rank file: TokenRanksError before any work
    return spec


class _Emptying:
    """ftruncate(fd, 0) on a thread of its own: emptying an old document of
    30 MB takes ext4 5-8 ms, which the walk's start then overlaps."""

    def __init__(self, fd: int):
        import threading
        self.error: OSError | None = None
        self.thread = threading.Thread(target=self._run, args=(fd,), name="slopfast-empty", daemon=True)
        self.thread.start()

    def _run(self, fd: int) -> None:
        try:
            os.ftruncate(fd, 0)
        except OSError as exc:
            self.error = exc

    def wait(self) -> None:
        self.thread.join()
        if self.error is not None:
            raise self.error


class _Output:
    """Where the document goes: a descriptor the C side may write to, or a
    file object Python writes each batch's document to. A path is opened
    without O_TRUNC: an old document in it is emptied on a thread of its
    own (_Emptying), and `fd` waits for that, so nothing is written before."""

    def __init__(self, target: Any):
        self.owned = isinstance(target, (str, bytes, os.PathLike))
        self.file = None
        self._emptying: _Emptying | None = None
        if self.owned:
            flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
            self._fd: int | None = os.open(target, flags, 0o666)
            st = os.fstat(self._fd)
            if stat.S_ISREG(st.st_mode) and st.st_size:
                self._emptying = _Emptying(self._fd)
        elif isinstance(target, int):
            self._fd = target
        else:
            self.file = target
            try:
                target.flush()
                self._fd = target.fileno()
            except (AttributeError, OSError, ValueError):   # io.BytesIO, a capture: no descriptor
                self._fd = None

    def _emptied(self) -> None:
        if self._emptying is not None:
            emptying, self._emptying = self._emptying, None
            emptying.wait()

    @property
    def fd(self) -> int | None:
        """The descriptor to write to, once an old document in it is gone."""
        self._emptied()
        return self._fd

    def identity_pair(self) -> tuple[int, int] | None:
        """(st_dev, st_ino) of the regular file written to, or None."""
        return _fallback.file_identity(self._fd) if self._fd is not None else None

    def identity(self) -> frozenset:
        ident = self.identity_pair()
        return frozenset((ident,)) if ident else frozenset()

    def write(self, data: bytes) -> None:
        if self.fd is None:
            self.file.write(data)
            return
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]

    def __enter__(self) -> "_Output":
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.owned and self._fd is not None:
            try:
                self._emptied()          # written to or not: no old document stays behind
            finally:
                os.close(self._fd)
        elif self.file is not None and self._fd is None:
            self.file.flush()


class _Calls:
    """A stream's calls, one at a time and in order, on a thread of their own,
    so that Python settles one batch's outcomes while the call on the next
    runs (the native call releases the GIL: on gen-50k the two halves took
    about 0.3 and 0.4 s in turn). After a call fails, later ones are not
    made: each answers that failure."""

    def __init__(self, run: Any) -> None:
        import queue
        import threading

        self._run = run
        self._calls: Any = queue.SimpleQueue()
        self._answers: Any = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name="slopfast-calls", daemon=True)
        self._abandoned = False

    def send(self, inputs: list[wire.Input]) -> None:
        if self._thread.ident is None:      # started by the first call
            self._thread.start()
        self._calls.put(inputs)

    def result(self) -> _fallback.Built:
        """The answer to the oldest call not taken yet (its error raised)."""
        answer = self._answers.get()
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def stop(self, abandon: bool = False) -> None:
        """Wait for the calls sent (their answers are dropped if not taken);
        `abandon`: for the one running only, the others are not made."""
        self._abandoned = abandon
        if self._thread.is_alive():
            self._calls.put(None)
            self._thread.join()

    def _serve(self) -> None:
        failure = None
        while (inputs := self._calls.get()) is not None:
            answer = failure        # after a failure, or abandoned (None): not made
            if failure is None and not self._abandoned:
                try:
                    answer = self._run(inputs, False)
                except BaseException as exc:   # noqa: BLE001 - raised where its answer is taken
                    answer = failure = exc
            self._answers.put(answer)


def stream(events: Iterable[Any], out: _Output, *, mode: Mode = "full", full: Any = None,
           max_file_size: int | None = None, languages: Mapping[str, str] | None = None,
           on_event: Any = None, format: Format = "markdown", raw: bool = False,
           line_numbers: bool = False, tree: bool = False, count: CountSpec | None = None,
           item_modes: Mapping[str, Mode] | None = None,
           tree_files: list[tuple[str, int]] | None = None, first_section: int = 0,
           avoid: tuple[int, int] | None = None) -> AggregateReport:
    """The document of a walk's events, written to `out` batch by batch
    while the walk goes on in a second thread and the calls run on a third,
    one batch ahead of the outcomes (the native call releases the GIL;
    on_event is called in the caller's thread): each file opened once, by
    the aggregate op, with the load checks (binary, size, special files,
    the output itself, O_NOFOLLOW).
    A format with a wrapper (xml, json) has it opened by the first request
    and closed by a last one with no inputs, once the walk is done; xml
    indices go on from request to request. The tree (`tree`) is known only
    then: that last request writes it, from the files of the report (or
    `tree_files`, (path, bytes) in order, when given). `count` counts the
    tokens; `item_modes` sets the mode of files by path. `first_section`:
    sections written before this part of a document (numbering and
    separators go on after them). `avoid`: (st_dev, st_ino) of the file
    the document ends up in when `out` is not it (a temporary file), left
    out as the output is."""
    import queue
    import threading

    from . import walk as _walk

    mode_code = _mode_code(mode)
    langs = _languages(languages)
    style = _style(format, raw, line_numbers, tree)
    checks = _fallback.Checks(nofollow=True, sniff=True, max_bytes=max_file_size or 0, bom_text=not style.raw,
                              avoid=avoid)
    batches: queue.Queue = queue.Queue(maxsize=4)
    stop = threading.Event()

    def produce() -> None:
        batch: list[Any] = []
        want = FIRST_BATCH_FILES
        inline = 0
        try:
            for event in events:
                if stop.is_set():
                    return
                batch.append(event)
                if isinstance(event, _walk.Found) and event.content is not None:
                    inline += len(event.content)
                if len(batch) >= want or inline >= BATCH_INLINE_BYTES:
                    batches.put(batch)
                    batch, want, inline = [], BATCH_FILES, 0
            batches.put(batch)
            batches.put(None)
        except BaseException as exc:   # noqa: BLE001 - the consumer re-raises it
            batches.put(exc)

    producer = threading.Thread(target=produce, name="slopfast-walk", daemon=True)
    producer.start()
    report = AggregateReport(FileList(), [], [], 0)
    sections = first_section      # sections written so far (counted by the calls' thread, as it makes them)
    opened = False
    written = 0
    carry = b""
    run_batch = None
    tally = _Tally() if count is not None else None

    def run(inputs: list[wire.Input], close: bool) -> _fallback.Built:
        nonlocal sections, opened, written, carry
        listed = report.files if tree_files is None else tree_files
        earlier = _EncodedPaths(listed) if close and style.tree else None
        built = run_batch(inputs, sections > 0, not opened, close, sections + 1, earlier, carry)
        opened = True
        if built.write_errno:
            raise OSError(built.write_errno, os.strerror(built.write_errno))
        if built.document:
            out.write(built.document)
        written += built.written
        sections += sum(1 for _, skip, _ in built.files if skip == wire.SKIP_NONE)
        if built.counts is not None:
            carry = built.counts.carry
        return built

    calls = _Calls(run)
    pending: list[tuple[list[Any], list[Any], bool]] = []   # (batch, its Found, sent to a call), in order

    def settle(batch: list[Any], found: list[Any], sent: bool) -> dict[int, int]:
        """A batch's outcomes, once its call has answered, into the report in
        order; its input index -> the file's place in report.files."""
        built = calls.result() if sent else None
        numbered: dict[int, int] = {}
        outcomes = iter(_outcomes(found, built, max_file_size))
        Found, Skipped = _walk.Found, _walk.Skipped
        files, j = report.files, 0
        for event in batch:
            if isinstance(event, Found):
                outcome = next(outcomes)
                if isinstance(outcome, Found):
                    numbered[j] = len(files)
                    files.append((outcome.path, outcome.size))
                j += 1
            else:
                outcome = event
            if isinstance(outcome, Skipped):
                report.skipped.append(outcome)
            elif not isinstance(outcome, Found):
                report.unreadable.append((outcome.path, outcome.error))
            if on_event is not None:
                on_event(outcome)
        if tally is not None and built is not None:
            tally.add(built.counts, numbered.__getitem__)
        return numbered

    numbered: dict[int, int] = {}
    try:
        while True:
            batch = batches.get()
            if isinstance(batch, BaseException):
                raise batch
            if batch is None:
                break
            found = [e for e in batch if isinstance(e, _walk.Found)]
            inputs = [_found_input(e, full, mode, item_modes) for e in found]
            if run_batch is None and inputs:
                run_batch = _choose(inputs, mode_code, langs, checks, out, style, count)
            if inputs:
                calls.send(inputs)
            pending.append((batch, found, bool(inputs)))
            if len(pending) > 1:      # the call on this batch runs while the one before is settled
                numbered = settle(*pending.pop(0))
        while pending:
            numbered = settle(*pending.pop(0))
        calls.stop()
        if style.closes:      # the closing wrapper and the tree (and the opening wrapper, if no file came)
            if run_batch is None:
                run_batch = _choose([], mode_code, langs, checks, out, style, count)
            built = run([], True)
            if tally is not None:
                tally.add(built.counts, numbered.__getitem__)
        if written:
            out.write(b"\n")
            written += 1
        report = report._replace(bytes_written=written)
        if tally is not None:      # the last unit: on the path that counted the rest (tiktoken's setup is slow)
            tally.finish(getattr(run_batch, "counter", None) or count.counter(), b"\n" if written else b"")
            per = [tally.per.get(k, 0) for k in range(len(report.files))]
            report = report._replace(tokens=tally.tokens, file_tokens=per)
            from . import count_cache
            count_cache.save_all()      # what the native op counted, for the next run
    finally:
        calls.stop(abandon=True)     # before the output is closed: no call may still write to it
        stop.set()
        while producer.is_alive():       # let a producer blocked on a full queue finish
            try:
                batches.get_nowait()
            except queue.Empty:
                producer.join(0.01)
    return report


class _EncodedPaths:
    """(path as bytes, size) of each (path, size) of `files`, made as they are
    read, each time: the tree's files without a second list of them all."""

    __slots__ = ("files",)

    def __init__(self, files: Iterable[tuple[str, int]]) -> None:
        self.files = files

    def __iter__(self) -> Any:
        return ((_encode_path(path), size) for path, size in self.files)


def _found_input(event: Any, full: Any, mode: Mode, item_modes: Mapping[str, Mode] | None = None) -> wire.Input:
    if item_modes is not None and event.path in item_modes:
        return wire.Input(_encode_path(event.path), event.content, _MODES[item_modes[event.path]])
    item_mode = wire.MODE_FULL if full is not None and mode != "full" and full.match_file(event.rel) else wire.MODE_DEFAULT
    path = event.path
    return wire.Input(path.encode("utf-8", "surrogateescape") if type(path) is str else _encode_path(path),
                      event.content, item_mode)


def _choose(inputs: list[wire.Input], mode: int, langs: dict[bytes, bytes], checks: _fallback.Checks, out: _Output,
            style: Style = DEFAULT_STYLE, count: CountSpec | None = None):
    """The backend for the whole stream, decided by the dispatcher on the
    first batch (calibrating on a sample in memory: nothing is written
    twice): a function (inputs, continues, open, close, first_index,
    tree_files, carry) -> Built."""
    # another C runtime's descriptors (Windows), or another process's (the subprocess transport), are not ours
    fd = out.fd if os.name == "posix" and native.transport() == "inprocess" else None

    def native_batch(batch, continues, open, close, first_index, tree_files, carry=b""):
        return _native(batch, mode, langs, checks, fd, continues, style=style, open=open, close=close,
                       first_index=first_index, tree_files=tree_files, count=count, carry=carry)

    def fallback_batch(batch, continues, open, close, first_index, tree_files, carry=b""):
        counting = _fallback.Counting(count.fallback_counter(), carry) if count is not None else None
        return _fallback.build(batch, mode, langs, _summary.summarise, checks, out.fd, continues, open=open,
                               close=close, first_index=first_index, tree_files=tree_files or (),
                               counting=counting, **style.kwargs())

    if count is not None:
        from . import tokens
        native_batch.counter = count.native_counter()
        fallback_batch.counter = lambda data: count.fallback_counter()(data)
        if not tokens._have_tiktoken():
            if dispatch.backend_setting() == "fallback":
                raise BackendUnavailable("SLOPFAST_BACKEND=fallback, but counting tokens there needs tiktoken "
                                         "(pip install slopfast[tokens])")
            return native_batch
    size = sum(ASSUMED_FILE_BYTES if i.data is None else len(i.data) for i in inputs)
    variant = _variant(inputs, mode) + ",stream" + (",tokens" if count else "")
    return dispatch.dispatch("aggregate", size, lambda: native_batch, lambda: fallback_batch,
                             variant=variant, sample=_stream_sample,
                             sample_of=(inputs, mode, langs, checks, style, count), imports=_imports(variant))


STREAM_SAMPLE_BYTES = 1 << 20


def _stream_sample(args, budget: int):
    """Both paths, in memory, on the first batch's files up to
    STREAM_SAMPLE_BYTES (by stat; at least one file), whatever the budget:
    a stream's calls are batches, and on one small file the per-call cost
    that a batch spreads over its files decides (a stream of 50,000 files
    went to the fallback, 2x slower, on a one-file sample)."""
    inputs, mode, langs, checks, style, count = args
    taken, size = [], 0
    for item in inputs:
        try:
            n = len(item.data) if item.data is not None else os.stat(item.path).st_size
        except OSError:
            n = 0
        if taken and size + n > STREAM_SAMPLE_BYTES:
            break
        taken.append(item)
        size += n
    counter = count.fallback_counter() if count is not None else None   # tiktoken's Encoding: built untimed
    return ((lambda: _native(taken, mode, langs, checks, style=style, count=count)),
            (lambda: _fallback.build(taken, mode, langs, _summary.summarise, checks, **style.kwargs(),
                                     counting=_fallback.Counting(counter) if counter else None)), size)


def _outcomes(found: list[Any], built: _fallback.Built | None, max_file_size: int | None) -> list[Any]:
    """What each Found became, in the order of `found`: Found with its size,
    Skipped or Unreadable (the event itself where the call did not say)."""
    from . import walk as _walk

    out = list(found)
    if built is None:
        return out
    for index, err in built.unreadable:
        path = found[index].path
        out[index] = _walk.Unreadable(path, InputError(err, os.strerror(err), path))
    new, found_type = tuple.__new__, _walk.Found
    for index, skip, value in built.files:
        event = found[index]
        path = event.path
        if skip == wire.SKIP_NONE:
            out[index] = new(found_type, (path, event.rel, value, event.content, event.ident))
        elif skip == wire.SKIP_BINARY:
            out[index] = _walk.binary_skip(path)
        elif skip == wire.SKIP_TOO_LARGE:
            out[index] = _walk.too_large_skip(path, value, max_file_size)
        elif skip == wire.SKIP_SPECIAL:
            out[index] = _walk.special_skip(path, value)
        elif skip == wire.SKIP_OUTPUT:
            out[index] = _walk.output_skip(path)
        else:
            out[index] = _walk.became_symlink_skip(path)
    return out


# ---- a token budget ---------------------------------------------------------------------

class BudgetError(SlopfastError):
    """The document does not fit the budget even with every file it may step down listed only."""

    def __init__(self, budget: int, needed: int):
        super().__init__(f"the document needs at least {needed} tokens even with every file listed only in "
                         f"the tree (files named with --full stay whole); the budget is {budget}")
        self.budget, self.needed = budget, needed


def _read_at(fd: int, n: int) -> bytes:
    """Up to n bytes from the start of fd (os.pread is not on Windows)."""
    os.lseek(fd, 0, os.SEEK_SET)
    parts, left = [], n
    while left:
        data = os.read(fd, min(left, 1 << 20))
        if not data:
            break
        parts.append(data)
        left -= len(data)
    return b"".join(parts)


def _copy(source: int, out: _Output) -> None:
    os.lseek(source, 0, os.SEEK_SET)
    while True:
        data = os.read(source, 1 << 20)
        if not data:
            return
        out.write(data)


def step_down(files: list[tuple[str, int]], cost: dict[str, tuple[int, int]], fixed: int, budget: int,
              fixed_paths: set[str]) -> dict[str, str]:
    """The level of each file that must step down for the document to fit
    (docs/cli.md, "--budget"): `cost[path]` is (tokens at its detail,
    tokens as a summary); `fixed` the rest (wrapper, tree). Largest first,
    ties in document order: to summary while any file can go there, then
    summaries (largest first) to listed only. {} when everything fits."""
    order = {path: i for i, (path, _) in enumerate(files)}
    total = fixed + sum(c[0] for c in cost.values())
    levels: dict[str, str] = {}
    movable = [p for p in cost if p not in fixed_paths]
    for path in sorted(movable, key=lambda p: (-cost[p][0], order[p])):
        if total <= budget:
            return levels
        whole, summary = cost[path]
        if summary < whole:
            levels[path] = "summary"
            total -= whole - summary
    for path in sorted(movable, key=lambda p: (-(cost[p][1] if p in levels else cost[p][0]), order[p])):
        if total <= budget:
            return levels
        total -= cost[path][1] if path in levels else cost[path][0]
        levels[path] = "listed"
    if total > budget:
        raise BudgetError(budget, total)
    return levels


# ---- the token count in the document's first line ------------------------------------------

_FIRST_UNIT = 1 << 16     # bytes of the document read to find where its first unit ends


def header_line(fmt: str, tokens: int, encoding: str) -> bytes:
    """The document's first line with token_header: a comment in markdown and
    xml (before the root element, where XML allows one), a line in plain."""
    text = f"{tokens:,} tokens ({encoding}), this line included"
    return f"<!-- {text} -->\n".encode() if fmt in ("markdown", "xml") else f"{text}\n\n".encode()


def with_header(doc_fd: int, report: AggregateReport, count: CountSpec, fmt: str) -> tuple[bytes, int]:
    """The header for the document in doc_fd (counted: report.tokens) and the
    count of header and document together: the header says that count. The
    header and the document's first unit are counted together (they may
    join), the rest is the document's; the number is found by iterating to
    the count it makes (a longer number may count one more token)."""
    if fmt == "json":
        raise ValueError("a json document has no place for a header line (the report and --stats have the count)")
    # the native counter unless the fallback is forced (dispatching one short text would pick tiktoken,
    # and pay its 0.6 s setup)
    use_native = native.available() and dispatch.backend_setting() != "fallback"
    counter = count.native_counter() if use_native else count.fallback_counter()
    head = _read_at(doc_fd, _FIRST_UNIT)
    unit = _fallback._UNIT_START.search(head)
    first = head[:unit.start() + 1] if unit else head
    if unit is None and len(head) == _FIRST_UNIT:            # one long first unit: count it whole
        first = _read_at(doc_fd, os.fstat(doc_fd).st_size)
    rest = report.tokens - counter(first) if first else report.tokens
    seen: set[int] = set()
    n = report.tokens
    while n not in seen:
        seen.add(n)
        line = header_line(fmt, n, count.encoding)
        total = counter(line + first) + rest
        if total == n:
            return line, n
        n = total
    raise SlopfastError(f"no token count states itself in a header line here ({sorted(seen)})")


def _emit(doc_fd: int, report: AggregateReport, out: _Output, count: CountSpec | None, fmt: str,
          header: bool) -> AggregateReport:
    """The document made in doc_fd to `out`, after its header line when asked."""
    if header and count is not None:
        line, total = with_header(doc_fd, report, count, fmt)
        out.write(line)
        report = report._replace(tokens=total, bytes_written=report.bytes_written + len(line))
    _copy(doc_fd, out)
    return report


def stream_with_header(events: Iterable[Any], out: _Output, count: CountSpec, **options: Any) -> AggregateReport:
    """stream(), its document headed by its token count (header_line): made
    in a temporary file, then written."""
    import tempfile
    with tempfile.TemporaryFile() as doc:
        report = stream(events, _Output(doc.fileno()), count=count, avoid=out.identity_pair(), **options)
        return _emit(doc.fileno(), report, out, count, options.get("format", "markdown"), True)


# Summaries of at least this many bytes of input are made in two halves, on
# two threads: making summaries (skeletons) keeps one core busy, counting them
# leaves the other mostly idle. Both backends split alike: the halves' counts
# choose what steps down, and the choice must not depend on the backend.
SPLIT_SUMMARY_BYTES = 1 << 20


def _summary_tokens(found: list[Any], size_of: dict[str, int], mode: Mode, count: CountSpec,
                    options: dict[str, Any]) -> dict[str, int]:
    """Each file's tokens in `mode`, counted in documents thrown away; in two
    halves of about equal bytes (`size_of`: path -> bytes), one on a second
    thread, when SPLIT_SUMMARY_BYTES says. The second half is numbered on
    from the first, but its first file is counted without its join to the
    file before it: step_down's estimate allows for joins (stream_budget
    counts the document it makes, and tries again when that is over)."""
    import threading

    count = count._replace(only=True)

    def tokens(part: list[Any], first_section: int = 0) -> dict[str, int]:
        with open(os.devnull, "wb") as sink:
            down = stream(part, _Output(sink.fileno()), mode=mode, count=count, first_section=first_section, **options)
        return dict(zip((p for p, _ in down.files), down.file_tokens))

    total = sum(size_of[e.path] for e in found)
    if total < SPLIT_SUMMARY_BYTES or len(found) < 2:
        return tokens(found)
    half, acc = 1, size_of[found[0].path]
    while half < len(found) - 1 and acc + size_of[found[half].path] <= total // 2:
        acc += size_of[found[half].path]
        half += 1
    count = count._replace(threads=1)    # the two halves are the two threads
    second: list[Any] = []               # the helper's counts, or what it raised

    def run() -> None:
        try:
            second.append(tokens(found[half:], half))
        except BaseException as exc:     # raised again on the caller's thread
            second.append(exc)

    helper = threading.Thread(target=run, name="slopfast-summaries", daemon=True)
    helper.start()
    first = tokens(found[:half])    # when this raises (Ctrl-C too), the helper ends its half on its own
    helper.join()
    if isinstance(second[0], BaseException):
        raise second[0]
    return {**first, **second[0]}


def stream_budget(events: Iterable[Any], out: _Output, budget: int, count: CountSpec, *, mode: Mode = "full",
                  full: Any = None, on_event: Any = None, header: bool = False,
                  **options: Any) -> tuple[AggregateReport, dict[str, str]]:
    """stream() within `budget` tokens (the whole document, tree included,
    counted as `count` says): files step down full -> summary -> listed
    only in the tree, by step_down's rule; files matching `full` never do.
    The document is made in a temporary file and copied to `out` once it
    fits (a count of the document as written, not an estimate). Returns the
    report of the document written and the level of each file stepped down.
    `header`: the document's first line says its count (with_header), and
    that line is in the budget too."""
    import tempfile

    from . import walk as _walk

    events = list(events)
    options["tree"] = True
    options["avoid"] = out.identity_pair()     # the documents are made in temporary files
    fmt = options.get("format", "markdown")
    lower: Mode = "summary" if mode == "full" else mode

    def fits(doc_fd: int, report: AggregateReport) -> int:
        """The tokens over the budget (0: it fits)."""
        total = with_header(doc_fd, report, count, fmt)[1] if header else report.tokens
        return max(0, total - budget)

    # the summaries' entries the count cache has, found while the full document is counted
    ahead = count._replace(ahead=lower, known={}) if mode == "full" and fmt in ("markdown", "plain") else count
    with tempfile.TemporaryFile() as first:
        report = stream(events, _Output(first.fileno()), mode=mode, full=full, count=ahead, on_event=on_event, **options)
        if not fits(first.fileno(), report):
            return _emit(first.fileno(), report, out, count, fmt, header), {}
    found = {e.path: e for e in events if isinstance(e, _walk.Found)}
    files = report.files
    whole = dict(zip((p for p, _ in files), report.file_tokens))
    kept = {p for p, _ in files if full is not None and full.match_file(found[p].rel)}
    start = {p: ("full" if mode == "full" or p in kept else mode) for p, _ in files}
    # each file's tokens one level down: a summary (lower) of those shown whole, and listed only (0)
    shown_whole = [found[p] for p, _ in files if start[p] == "full" and p not in kept]
    summary = dict.fromkeys(whole, 0)
    if shown_whole and lower != "full":
        summary.update(_summary_tokens(shown_whole, dict(files), lower, count._replace(known=ahead.known),
                                       {**options, "tree": False}))
    cost = {p: (whole[p], summary[p] if start[p] == "full" else whole[p]) for p in whole}
    fixed = report.tokens - sum(whole.values())
    if header:
        fixed += count.counter()(header_line(fmt, budget, count.encoding))
    excess = 0
    for _ in range(64):
        levels = step_down(files, cost, fixed + excess, budget, kept)
        modes = {p: (lower if levels.get(p) == "summary" else start[p]) for p in whole if levels.get(p) != "listed"}
        chosen = [found[p] for p, _ in files if p in modes]
        with tempfile.TemporaryFile() as doc:
            final = stream(chosen, _Output(doc.fileno()), mode=mode, count=count, item_modes=modes,
                           tree_files=files, **options)
            over = fits(doc.fileno(), final)
            if not over:
                return _emit(doc.fileno(), final, out, count, fmt, header), levels
        # the estimate was short by what the joins of the new neighbours cost: count it in, try again
        excess += over
    raise BudgetError(budget, budget + over)
