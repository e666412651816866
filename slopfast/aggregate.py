"""The aggregate op: many files into one markdown document with
`build_markdown` (docs/build-markdown.md)."""
from __future__ import annotations

import errno as _errno
import os
from collections.abc import Iterable, Mapping
from typing import Any, Literal, NamedTuple

from . import dispatch, native, wire
from .errors import InputError
from .fallbacks import aggregate as _fallback
from .fallbacks import summary as _summary

Mode = Literal["full", "summary", "skeleton"]
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


def _batches(ops, items) -> Iterable[tuple[list[int], list[wire.Input]]]:
    """(index, input) pairs in requests within the wire's limits
    (LIMIT_INPUTS inputs, LIMIT_REQUEST_BYTES bytes): the indices and the
    inputs of each request; at least one request."""
    base = len(wire.encode_request(ops, []))
    index: list[int] = []
    batch: list[wire.Input] = []
    size = base
    for i, item in items:
        cost = 6 + len(item.path) + (0 if item.data is None else 8 + len(item.data))   # its v3 bytes
        if batch and (len(batch) == _fallback.LIMIT_INPUTS or size + cost > _fallback.LIMIT_REQUEST_BYTES):
            yield index, batch
            index, batch, size = [], [], base
        index.append(i)
        batch.append(item)
        size += cost
    yield index, batch


def _native(inputs, mode: int, languages: dict[bytes, bytes]) -> tuple[bytes, list[tuple[int, int]]]:
    """The native document: any number of items, in as many requests as the
    wire's limits need, joined into the document one request would give.
    Inline content past LIMIT_INPUT_BYTES is not sent: EFBIG, as the C side
    (and the fallback) answers it."""
    params: dict[str, str | bytes] = {"mode": wire.MODE_NAMES[mode]}
    if languages:
        params["lang"] = b"\n".join(k + b"\t" + v for k, v in languages.items())
    ops = [("aggregate", params)]
    limit = _fallback.LIMIT_INPUT_BYTES
    skipped = [(i, _errno.EFBIG) for i, item in enumerate(inputs) if item.data is not None and len(item.data) > limit]
    items = [(i, item) for i, item in enumerate(inputs) if item.data is None or len(item.data) <= limit]
    documents: list[bytes] = []
    for index, batch in _batches(ops, items):
        document, part = native.run(ops, batch)
        if document:                   # a request whose every input was unreadable has none
            documents.append(document)
        skipped += [(index[j], err) for j, err in wire.decode_records(part)]
    skipped.sort()
    document = documents[0] if len(documents) == 1 else _fallback.SEPARATOR.join(documents)
    if _fallback.response_bytes(document, len(skipped)) > _fallback.LIMIT_OUTPUT_BYTES:
        raise _fallback.output_limit_error()
    return document, skipped


def _variant(inputs: list[wire.Input], mode: int) -> str:
    """What changes the work: the modes in use, and reading files or not
    (a summary costs the fallback 10x what copying does; reading is I/O)."""
    modes = {i.mode or mode for i in inputs}
    return ",".join(wire.MODE_NAMES[m] for m in sorted(modes)) + (",files" if any(i.data is None for i in inputs) else "")


def _sample(args, budget: int):
    """Both paths on the first inputs, up to `budget` bytes (files counted as
    ASSUMED_FILE_BYTES), for calibrating a large aggregate."""
    inputs, mode, langs = args
    taken, size = [], 0
    for item in inputs:
        if taken and size >= budget:
            break
        piece = item if item.data is None or len(item.data) <= budget else item._replace(data=dispatch.line_sample(item.data, budget))
        taken.append(piece)
        size += ASSUMED_FILE_BYTES if piece.data is None else len(piece.data)
    return (lambda: _native(taken, mode, langs)), (lambda: _fallback.build(taken, mode, langs, _summary.summarise)), size


def build(
    items: Iterable[Any],
    *,
    mode: Mode = "full",
    languages: Mapping[str, str] | None = None,
) -> BuildResult:
    """The document as bytes, plus the inputs that could not be read (skipped)."""
    inputs = [to_input(item) for item in items]
    for item in inputs:                # the wire's limit, on both paths
        if len(item.path) > _fallback.LIMIT_NAME_BYTES:
            raise _fallback.path_limit_error(len(item.path))
    mode_code = _mode_code(mode)
    langs = _languages(languages)
    size = sum(ASSUMED_FILE_BYTES if i.data is None else len(i.data) for i in inputs)
    document, skipped = dispatch.dispatch(
        "aggregate",
        size,
        lambda: _native(inputs, mode_code, langs),
        lambda: _fallback.build(inputs, mode_code, langs, _summary.summarise),
        variant=_variant(inputs, mode_code),
        sample=_sample, sample_of=(inputs, mode_code, langs),
    )
    errors = []
    for index, err in skipped:
        path = os.fsdecode(inputs[index].path)
        errors.append((path, InputError(err, os.strerror(err), path)))
    return BuildResult(document, errors)


def build_markdown(
    items: Iterable[Any],
    *,
    as_bytes: bool = False,
    mode: Mode = "full",
    languages: Mapping[str, str] | None = None,
    errors: Literal["raise", "skip"] = "raise",
) -> str | bytes:
    """Aggregate files into one markdown document.

    An item is a path (read from disk), a (path, content) pair, a mapping with
    "path" and "content", or an object with those attributes; content is str
    or bytes. A third tuple element, a "mode" key or attribute sets the item's
    mode ("full", "summary", "skeleton"); `mode` sets the default. `languages`
    maps suffixes to fence language names ({"py": "python"}).

    errors="raise" raises InputError for the first unreadable file;
    errors="skip" leaves such files out. The document is built as bytes; as
    a str, invalid UTF-8 in content shows as U+FFFD (as_bytes=True keeps the
    bytes exactly).
    """
    if errors not in ("raise", "skip"):
        raise ValueError("errors must be 'raise' or 'skip'")
    result = build(items, mode=mode, languages=languages)
    if errors == "raise" and result.skipped:
        raise result.skipped[0][1]
    return result.document if as_bytes else result.document.decode("utf-8", "replace")
