"""The count cache: token counts the native aggregate op made, kept from
run to run (docs/tokens.md, "The count cache").

Counting is exact because the document is counted in units that cannot join
(docs/tokens.md, "Counts of a document"). A body of 1 KiB or more has a head,
up to its first unit start, counted with what precedes it; the rest, with the
suffix its format writes after it, is whole units, whose count depends on
those bytes alone. The op hashes each such body (SipHash-1-3 in two lanes,
128 bits, under this cache's random key) and takes the rest's count from the
cache when the hash is there; what it counted, it reports, and the run keeps it. Counts are the
same with or without the cache; a run on an unchanged tree counts only the
heads, headers and small files. The documents --budget makes to count
summaries (the op's count_only) keep entries of whole summary sections too,
under the hash of their source: on an unchanged tree no summary is made.

One file per encoding and library build in the cache directory: MAGIC, then
the op's `count_cache` parameter as it is sent (the key, then entries (hash
word 0, word 1, tokens), 8-byte little endian each, sorted), then its CRC-32.
Past MAX_ENTRIES it starts over with the entries of this process's runs.
SLOPFAST_COUNT_CACHE=off turns it off; a directory puts it there.
"""
from __future__ import annotations

import os
import struct
import threading
import zlib

from . import _env
from ._cache_file import write_whole
from . import native as _native

MAGIC = b"slopfast-counts-1\n"
KEY_BYTES, ENTRY = 16, struct.Struct("<QQQ")
MAX_ENTRIES = 1 << 17          # 3 MiB: read whole on every counting run
_setting = _env.reader("SLOPFAST_COUNT_CACHE")
_lock = threading.Lock()
_caches: dict[str, "CountCache"] = {}


class CountCache:
    """One encoding's cache: `param` is what requests send; `note` takes an
    answer's records; `save` writes what this process counted."""

    def __init__(self, path: str):
        self.path = path
        self.param = _read(path) or os.urandom(KEY_BYTES)
        self.counted: dict[tuple[int, int], int] = {}   # new this process, not yet saved
        self.used: set[tuple[int, int]] = set()         # found in the cache this process

    def note(self, records: list[tuple[int, int, int, int, int]]) -> None:
        """Part 4 of an aggregate answer: (input, hash word 0, word 1, tokens, from the cache)."""
        with _lock:
            for _, h0, h1, tokens, hit in records:
                if hit:
                    self.used.add((h0, h1))
                else:
                    self.counted[(h0, h1)] = tokens

    def save(self) -> None:
        """Merge what was counted into the file (atomically); nothing when nothing is new."""
        with _lock:
            if not self.counted:
                return
            key = self.param[:KEY_BYTES]
            current = _read(self.path)          # with what other processes kept meanwhile, under the same key
            old = current[KEY_BYTES:] if current is not None and current[:KEY_BYTES] == key else self.param[KEY_BYTES:]
            entries = {(h0, h1): n for h0, h1, n in ENTRY.iter_unpack(old)}
            if len(entries) + len(self.counted) > MAX_ENTRIES:     # start over, with what this process saw
                entries = {h: entries[h] for h in self.used if h in entries}
            entries.update(self.counted)
            param = key + b"".join(ENTRY.pack(h0, h1, n) for (h0, h1), n in sorted(entries.items()))
            self.param, self.counted = param, {}
            _write(self.path, param)


def _read(path: str) -> bytes | None:
    """The parameter kept at path, if it is whole (magic, length, CRC-32)."""
    try:
        with open(path, "rb") as f:
            data = f.read((MAX_ENTRIES + 1) * ENTRY.size + KEY_BYTES + len(MAGIC) + 4)
    except OSError:
        return None
    param = data[len(MAGIC):-4]
    if (data[:len(MAGIC)] != MAGIC or len(param) < KEY_BYTES or (len(param) - KEY_BYTES) % ENTRY.size
            or (len(param) - KEY_BYTES) // ENTRY.size > MAX_ENTRIES
            or zlib.crc32(param).to_bytes(4, "big") != data[-4:]):
        return None
    return param


def _write(path: str, param: bytes) -> None:
    """A cache that cannot be written is no error: the next run counts again."""
    write_whole(path, MAGIC, param, zlib.crc32(param).to_bytes(4, "big"))


def cache_path(encoding: str) -> str | None:
    """Where `encoding`'s cache is: in the cache directory, or in the
    directory SLOPFAST_COUNT_CACHE names; None when it says off, or
    without a native library (the counts are its counter's)."""
    setting = (_setting() or "").strip()
    build = _native.build_id()
    if setting.lower() in ("off", "0", "no", "false") or not build:
        return None
    if not setting:
        from .dispatch import user_cache_dir
        setting = user_cache_dir()
    return os.path.join(setting, f"counts-{encoding}-{build}.bin")


def for_encoding(encoding: str) -> CountCache | None:
    """This process's cache for `encoding` (None: off, or no native library)."""
    path = cache_path(encoding)
    if path is None:
        return None
    with _lock:
        cache = _caches.get(path)
        if cache is None:
            cache = _caches[path] = CountCache(path)
    return cache


def save_all() -> None:
    """Save what this process counted, in every cache it loaded (the end of a run)."""
    with _lock:
        caches = list(_caches.values())
    for cache in caches:
        cache.save()
