"""Exact token counts for o200k_base and cl100k_base (docs/tokens.md).

`count_tokens(text)` is the length of tiktoken's `encode_ordinary(text)`;
`count_tokens_many(texts)` counts many texts in one native call. The native
path (lib/tokens.c) and the fallback (tiktoken over the same rank files) give
the same counts.

Text: `str` as tiktoken takes it (a lone surrogate becomes U+FFFD, as
tiktoken's own retry makes it); `bytes` are read as
`bytes.decode("utf-8", errors="replace")` reads them, on both paths.

Rank files, first found wins: the file or directory SLOPFAST_TIKTOKEN_RANKS
names (a directory holds `<encoding>.tiktoken` or `<encoding>.tiktoken.gz`),
tiktoken's own cache (TIKTOKEN_CACHE_DIR, DATA_GYM_CACHE_DIR, or
<tmp>/data-gym-cache, the file named by the SHA-1 of the rank file's URL),
then the `bpe-openai` package's data folder. Each is checked against the
SHA-256 tiktoken expects. Nothing is downloaded. Once parsed, the ranks
are kept in slopfast's cache directory and read from there while no rank
file is named (docs/tokens.md, "Rank files").
"""
from __future__ import annotations

import functools
import os
import threading
import zlib

TYPE_CHECKING = False   # typing.TYPE_CHECKING, without importing typing (its cost is start-up)
if TYPE_CHECKING:
    from typing import Iterable, Sequence

from . import native as _native
from ._cache_file import write_whole
from .dispatch import backend_setting, dispatch
from .errors import BackendUnavailable, SlopfastError
from .fallbacks import tokens as _fallback
from .wire import Input, records_reader

__all__ = ["TokenRanksError", "count_tokens", "count_tokens_many"]

ENCODINGS = {
    # name: (tiktoken's URL, the SHA-256 tiktoken checks)
    "o200k_base": ("https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
                   "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"),
    "cl100k_base": ("https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
                    "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"),
}
RANKS_ENV = "SLOPFAST_TIKTOKEN_RANKS"


class TokenRanksError(SlopfastError, LookupError):
    """No rank file for an encoding was found, or the one found is not tiktoken's."""


def _check_encoding(encoding: str) -> str:
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown encoding {encoding!r} (known: {', '.join(ENCODINGS)})")
    return encoding


def _tiktoken_cache_file(url: str) -> str | None:
    """tiktoken's cache path of `url` (tiktoken/load.py read_file_cached), or None when caching is off."""
    if "TIKTOKEN_CACHE_DIR" in os.environ:
        cache_dir = os.environ["TIKTOKEN_CACHE_DIR"]
    elif "DATA_GYM_CACHE_DIR" in os.environ:
        cache_dir = os.environ["DATA_GYM_CACHE_DIR"]
    else:
        import tempfile
        cache_dir = os.path.join(tempfile.gettempdir(), "data-gym-cache")
    if cache_dir == "":
        return None
    import hashlib
    return os.path.join(cache_dir, hashlib.sha1(url.encode()).hexdigest())


def _bpe_openai_file(encoding: str) -> str | None:
    """bpe-openai's bundled rank file, found without importing the package."""
    from importlib.util import find_spec
    try:
        spec = find_spec("bpe_openai")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = os.path.join(folder, "data", f"{encoding}.tiktoken.gz")
        if os.path.isfile(path):
            return path
    return None


def rank_file_candidates(encoding: str) -> list[tuple[str, str]]:
    """(where, path) of every place looked at for `encoding`, in order."""
    url, _ = ENCODINGS[_check_encoding(encoding)]
    out = []
    named = os.environ.get(RANKS_ENV)
    if named:
        if os.path.isdir(named):
            for suffix in (".tiktoken", ".tiktoken.gz"):
                out.append((RANKS_ENV, os.path.join(named, encoding + suffix)))
        else:
            out.append((RANKS_ENV, named))
    cached = _tiktoken_cache_file(url)
    if cached:
        out.append(("tiktoken's cache", cached))
    bundled = _bpe_openai_file(encoding)
    if bundled:
        out.append(("the bpe-openai package", bundled))
    return out


def _read_rank_file(path: str) -> bytes:
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] != b"\x1f\x8b":
        return data
    import gzip
    return gzip.decompress(data)


def find_rank_file(encoding: str, path: str | os.PathLike | None = None) -> tuple[str, bytes]:
    """The path and contents (decompressed) of `encoding`'s rank file:
    `path` when given, else the first of rank_file_candidates that exists."""
    import hashlib   # here, not at the top: loading OpenSSL costs a few ms, and a cached blob needs none of it

    _, sha256 = ENCODINGS[_check_encoding(encoding)]
    where = [("the path given", os.fspath(path))] if path is not None else rank_file_candidates(encoding)
    for source, candidate in where:
        if not os.path.isfile(candidate):
            if path is not None:
                raise TokenRanksError(f"{encoding}: no rank file at {candidate}")
            continue
        data = _read_rank_file(candidate)
        if hashlib.sha256(data).hexdigest() != sha256:
            raise TokenRanksError(f"{encoding}: {candidate} (from {source}) is not tiktoken's {encoding} "
                                  f"rank file (its SHA-256 is not {sha256})")
        return candidate, data
    raise TokenRanksError(
        f"no rank file for {encoding}: set {RANKS_ENV} to a file or to a directory holding "
        f"{encoding}.tiktoken(.gz), or let tiktoken cache it (TIKTOKEN_CACHE_DIR; one online "
        f"tiktoken.get_encoding({encoding!r}) fills it), or pip install bpe-openai (it bundles "
        f"the rank files); looked at: {', '.join(p for _, p in where) or 'nothing'}")


class _Ranks:
    """One encoding's ranks, read once per process: `blob`, the `ranks`
    parameter of the native op (every token in rank order as a length byte
    and its bytes), and `ranks`, the dict tiktoken takes (made from the
    blob on first use). Parsing a rank file takes about a second in Python;
    the blob is kept in the cache directory (cached_blob) and read back in
    a few milliseconds, checked by its length and CRC-32."""

    def __init__(self, encoding: str, path: str | None):
        self.encoding = encoding
        # a rank file the caller names is read and checked; else the cache may answer
        blob = _read_cached_blob(encoding) if path is None and not os.environ.get(RANKS_ENV) else None
        if blob is None:
            _, data = find_rank_file(encoding, path)
            blob = _parse_rank_file(encoding, data)
            _write_cached_blob(encoding, blob)
        self.blob = blob
        self._ranks: dict[bytes, int] | None = None

    @property
    def ranks(self) -> dict[bytes, int]:
        if self._ranks is None:
            out, blob, at = {}, self.blob, 0
            while at < len(blob):
                n = blob[at]
                out[blob[at + 1:at + 1 + n]] = len(out)
                at += 1 + n
            self._ranks = out
        return self._ranks


def _parse_rank_file(encoding: str, data: bytes) -> bytes:
    """The blob of a rank file's lines ("BASE64 RANK")."""
    import binascii
    tokens: list[tuple[int, bytes]] = []
    for line in data.splitlines():
        if line:
            token, rank = line.split()
            tokens.append((int(rank), binascii.a2b_base64(token)))
    if any(tokens[i][0] != i for i in range(len(tokens))):
        tokens.sort()
    if [r for r, _ in tokens] != list(range(len(tokens))) or any(not 0 < len(t) < 256 for _, t in tokens):
        raise TokenRanksError(f"{encoding}: ranks are not 0..n-1 over tokens of 1 to 255 bytes")
    return b"".join(bytes((len(t),)) + t for _, t in tokens)


_BLOB_MAGIC = b"slopfast-ranks-2\n"
_BLOB_CHECK = 12   # bytes after the magic: the blob's length and CRC-32


def _blob_path(encoding: str) -> str:
    """Named by the format too: installs of two formats sharing a cache
    directory each keep their own file, not rewriting each other's."""
    from .dispatch import user_cache_dir
    return os.path.join(user_cache_dir(), f"{encoding}-{ENCODINGS[encoding][1][:16]}.ranks2")


def _read_cached_blob(encoding: str) -> bytes | None:
    """The blob cached for `encoding`, if it is there and whole (its length
    and CRC-32 check: the file is written whole or not at all, and is the
    user's own; a SHA-256 would load OpenSSL, a few ms of every counting run)."""
    try:
        with open(_blob_path(encoding), "rb") as f:
            data = f.read()
    except OSError:
        return None
    head = len(_BLOB_MAGIC) + _BLOB_CHECK
    blob = data[head:]
    if data[:len(_BLOB_MAGIC)] != _BLOB_MAGIC or data[len(_BLOB_MAGIC):head] != _blob_check(blob):
        return None
    return blob


def _blob_check(blob: bytes) -> bytes:
    return len(blob).to_bytes(8, "big") + zlib.crc32(blob).to_bytes(4, "big")


def _write_cached_blob(encoding: str, blob: bytes) -> None:
    """Keep the blob for the next process; a cache that cannot be written is no error."""
    write_whole(_blob_path(encoding), _BLOB_MAGIC, _blob_check(blob), blob)


def _image_path(encoding: str, path: str | None) -> str | None:
    """Where the image of the native vocabulary of `encoding` is kept, for
    this library's build (native.vocab_index): of the rank file found as
    count_tokens finds it, like the cached blob; None for a rank file the
    caller names, or without the library."""
    build = _native.build_id() if path is None and not os.environ.get(RANKS_ENV) else None
    if not build:
        return None
    from .dispatch import user_cache_dir
    return os.path.join(user_cache_dir(), f"{encoding}-{ENCODINGS[encoding][1][:16]}-{build}.vocab")


def check_ranks(encoding: str, path: str | None) -> None:
    """TokenRanksError now, before any work, when there is no rank file. An
    image of the native vocabulary stands for one (it was built from a rank
    file found and checked), unless the fallback is forced."""
    image = _image_path(encoding, path) if backend_setting() != "fallback" else None
    if image is None or not os.path.exists(image):
        _ranks(encoding, path)


def _vocab(encoding: str, path: str | None) -> int | None:
    """The native vocabulary's index in this thread's context (None: send the ranks)."""
    return _native.vocab_index(f"{encoding}:{path}", lambda: _ranks(encoding, path).blob, _image_path(encoding, path))


_ranks_lock = threading.Lock()


@functools.lru_cache(maxsize=None)
def _ranks_cached(encoding: str, path: str | None) -> _Ranks:
    return _Ranks(encoding, path)


def _ranks(encoding: str, path: str | None = None) -> _Ranks:
    with _ranks_lock:
        return _ranks_cached(encoding, path)


@functools.lru_cache(maxsize=None)
def _have_tiktoken() -> bool:
    from importlib.util import find_spec
    return find_spec("tiktoken") is not None


def _prepare(text: str | bytes) -> tuple[bytes, str | None]:
    """The bytes the native path reads and, for str input, the text tiktoken
    reads (None: decode the bytes when needed)."""
    if isinstance(text, str):
        try:
            return text.encode("utf-8"), text
        except UnicodeEncodeError:
            # tiktoken's own retry (tiktoken/core.py encode_ordinary)
            text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
            return text.encode("utf-8"), text
    if isinstance(text, (bytes, bytearray, memoryview)):
        return bytes(text), None
    raise TypeError(f"text must be str or bytes, not {type(text).__name__}")


_decode_counts = records_reader("Q")


def _run_native(datas: Sequence[bytes], encoding: str, path: str | None) -> list[int]:
    """One request for all texts. The vocabulary goes to the library once per
    process (native.vocab_index); the subprocess transport gets the ranks in
    every request instead."""
    index = _vocab(encoding, path)
    if index is not None:
        params = {"encoding": encoding, "vocab": str(index)}
    else:
        params = {"encoding": encoding, "ranks": _ranks(encoding, path).blob}
    part = _native.run([("tokens", params)], [Input(b"<text>", d) for d in datas])[0]
    return [row[0] for row in _decode_counts(part)]


def _run_fallback(prepared: Sequence[tuple[bytes, str | None]], encoding: str, path: str | None) -> list[int]:
    texts = [t if t is not None else d.decode("utf-8", "replace") for d, t in prepared]
    return _fallback.count(texts, encoding, lambda: _ranks(encoding, path).ranks)


def _sample(args, budget: int):
    """A sample for calibration, both paths warmed first: the first call of
    each would otherwise be timed building its vocabulary (tiktoken's
    Encoding: about 0.3 s; the native table: about 10 ms)."""
    prepared, encoding, path = args
    _vocab(encoding, path)
    _fallback.encoding(encoding, lambda: _ranks(encoding, path).ranks)
    part, size = [], 0
    for d, t in prepared:
        if size + len(d) > budget and part:
            break
        part.append((d[:budget], None) if len(d) > budget else (d, t))
        size += min(len(d), budget)
    datas = [d for d, _ in part]
    return (lambda: _run_native(datas, encoding, path)), (lambda: _run_fallback(part, encoding, path)), size


def count_tokens_many(texts: Iterable[str | bytes], encoding: str = "o200k_base", *,
                      ranks: str | os.PathLike | None = None) -> list[int]:
    """The token count of each text in `encoding` (o200k_base or
    cl100k_base): len(tiktoken's encode_ordinary(text)), for all texts in
    one native call. `ranks`: the rank file to use instead of looking for one."""
    _check_encoding(encoding)
    path = os.fspath(ranks) if ranks is not None else None
    prepared = [_prepare(t) for t in texts]
    if not prepared:
        return []
    size = sum(len(d) for d, _ in prepared)
    check_ranks(encoding, path)   # a missing rank file is TokenRanksError on either path
    if not _have_tiktoken():
        # no fallback installed: the native path alone (dispatch would time tiktoken)
        if _native.available() and backend_setting() != "fallback":
            return _run_native([d for d, _ in prepared], encoding, path)
        raise BackendUnavailable("count_tokens needs tiktoken (pip install slopfast[tokens]) or the native library")
    return dispatch(
        "tokens", size,
        lambda: _run_native([d for d, _ in prepared], encoding, path),
        lambda: _run_fallback(prepared, encoding, path),
        variant=encoding, sample=_sample, sample_of=(prepared, encoding, path),
        imports=("tiktoken",),    # and its Encoding, built on first use: about 0.6 s
    )


def count_tokens(text: str | bytes, encoding: str = "o200k_base", *,
                 ranks: str | os.PathLike | None = None) -> int:
    """The number of tokens of `text` in `encoding` (o200k_base, the
    default, or cl100k_base): len(tiktoken's encode_ordinary(text))."""
    return count_tokens_many([text], encoding, ranks=ranks)[0]
