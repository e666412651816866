"""The C walk of a directory argument (the walk op, lib/walk.c), as the events of
slopfast.walk's Python walk (docs/internals.md, "The native walk").

slopfast.walk.walk() calls `dir_events` for each directory argument when
`usable` says so. Python keeps what is read once per argument
(slopfast.walk._setup: the work tree, git's configuration, core.excludesFile,
info/exclude, the ignore files above the argument, the default ignores) and
sends those rules and the options in one request; the C side lists the
directories, reads each one's .gitignore and .slopfastignore and the index,
matches, and answers one row per event. Python then turns rows into events:
a regular file into Found (or, with check_files, the checks of _read_file),
a symlink into what _symlink decides (the symlink policy stays here: links
are rare), a special file into its Skipped note, what the rules left out into
WalkOptions.left_out.

What the C walk leaves to the Python walk, whole (detected before any event is
given, so nothing differs):

- `follow_symlinks` (a walk through directory symlinks, with its loop checks);
- a platform other than POSIX and Windows, no native library, SLOPFAST_BACKEND=fallback;
- on Windows, a directory reparse point that is neither a symlink nor a
  junction (os.scandir calls it a directory, and the Python walk enters it),
  and a path or name not in UTF-8 or UTF-16;
- a nested repository (a `.git` entry below the argument while git's rules are
  in force: the Python walk reads its rules and index);
- nesting past 128 levels or paths below the argument past 3072 bytes, and a
  process out of descriptors (the C walk holds one per level; the Python walk
  builds paths, which fail past PATH_MAX);
- a library without the walk op (an older build named by SLOPFAST_LIB).
"""
from __future__ import annotations

import os
import struct
import sys
TYPE_CHECKING = False   # typing.TYPE_CHECKING, without importing typing (its cost is start-up)
if TYPE_CHECKING:
    from typing import Any, Iterator

from . import native, wire
from .errors import PipelineError
from .walk import Found, Unreadable, _read_file, _symlink, special_skip

EVENT_FILE, EVENT_SYMLINK, EVENT_SPECIAL, EVENT_UNREADABLE, EVENT_LEFT_OUT, EVENT_USED, EVENT_WALKED, EVENT_BAIL = range(8)
WHY = ("hidden", "git", "ignore", "exclude", "include")
GROUP_GIT, GROUP_OWN, GROUP_EXCLUDE, GROUP_INCLUDE = range(4)


class NativeWalkUnavailable(RuntimeError):
    """native=True, but the C walk cannot run here."""


def why_not(options: Any) -> str | None:
    """Why this walk cannot be native (None: it can)."""
    if os.name not in ("posix", "nt"):
        return f"the native walk is for POSIX systems and Windows, not {os.name}"
    if options.follow_symlinks:
        return "--follow-symlinks is walked by the Python walk"
    if not native.available():
        return f"the native library did not load: {native.load_error()}"
    return None


def usable(options: Any, want: bool | None) -> bool:
    """Walk natively? `want` None: when possible and SLOPFAST_BACKEND is not
    `fallback`; True: always (NativeWalkUnavailable where it cannot); False: never."""
    if want is False:
        return False
    reason = why_not(options)
    if want is True:
        if reason is not None:
            raise NativeWalkUnavailable(reason)
        return True
    if reason is not None:
        return False
    from . import dispatch
    return dispatch.backend_setting() != "fallback"


def _layer(group: int, rules: Any) -> bytes:
    base = rules.base
    source = os.fsencode(rules.source) if rules.source else b""
    out = [struct.pack("<BI", group, len(base)), base, struct.pack("<I", len(source)), source,
           struct.pack("<I", len(rules.rules))]
    for rule in rules.rules:
        out += (struct.pack("<I", len(rule.pattern)), rule.pattern)
    return b"".join(out)


def request(root: str, prefix: str, options: Any, include: Any, exclude: Any, setup: tuple) -> tuple[list, list]:
    """The walk op's request for one directory argument: (ops, inputs)."""
    _root_real, repo, git, own, offset = setup
    layers = []
    if git is not None:
        layers += [_layer(GROUP_GIT, rules) for rules in git[1]]
    layers += [_layer(GROUP_OWN, rules) for rules in own]
    if exclude is not None:
        layers.append(_layer(GROUP_EXCLUDE, exclude.rules))
    if include is not None:
        layers.append(_layer(GROUP_INCLUDE, include.rules))
    params: dict[str, str | bytes] = {
        "hidden": "1" if options.hidden else "0", "git": "1" if git is not None else "0",
        "prefix": os.fsencode(prefix), "offset": offset, "layers": b"".join(layers),
    }
    if git is not None and git[0] is not None:
        params["index"] = os.fsencode(os.path.join(git[0].git_dir, "index"))
        params["hash_len"] = str(git[0].hash_len)
        if git[0].ignore_case:
            params["ignore_case"] = "1"
    return [("walk", params)], [wire.Input(os.fsencode(root), None)]


def dir_events(root: str, prefix: str, options: Any, include: Any, exclude: Any, setup: tuple) -> Iterator[Any] | None:
    """The events of one directory argument, as slopfast.walk._walk_dir gives them
    (an iterator: rows become events as they are taken, so the stream's first batch
    need not wait for all of them), or None when the C walk leaves this argument to
    the Python walk."""
    ops, inputs = request(root, prefix, options, include, exclude, setup)
    try:
        part, files = native.run(ops, inputs)
    except PipelineError as exc:
        if exc.code == wire.CODE_UNKNOWN_OP:     # a library from before the walk op (SLOPFAST_LIB)
            return None
        raise
    finally:
        native.release()      # the answer, twice, in this thread's context: else kept for its next call
    rows = wire.decode_records(part)
    if bailed(rows):
        return None
    return events_of(rows, files, prefix, options, setup[0])


def bailed(rows: list) -> bool:
    """Does the C walk leave the argument to the Python walk? (its bail row ends
    the argument's rows, before the rows of the patterns used)"""
    for row in reversed(rows):
        if row[1] != EVENT_USED:
            return row[1] == EVENT_BAIL
    return False


def events_of(rows: list, files: bytes, prefix: str, options: Any, root_real: str) -> Iterator[Any]:
    """The walk op's rows and file list (of an argument the C walk walked) as
    events; what the rules left out goes into options.left_out once the last
    event is taken. The files are read from the list as they are taken."""
    fsdecode = os.fsdecode
    encoding, errors = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()
    n = len(prefix)
    check = options.check_files
    new = tuple.__new__
    find, rfind = files.find, files.rfind
    pos = at = 0             # where the list's next piece starts, the next file's number
    piece: list = []         # the list is split a piece (about 64 KiB) at a time
    k = 0
    left_rows = []
    walked = False
    end_row = (files.count(b"\0"), -1, b"", 0, 0, b"", b"")    # after the last row: the files left
    for before, kind, path, value, index, source, pattern in (*rows, end_row):
        while at < before:
            if k == len(piece):
                end = rfind(b"\0", pos, pos + 65536)
                if end < 0:
                    end = find(b"\0", pos)
                piece, k, pos = files[pos:end].split(b"\0"), 0, end + 1
            shown = piece[k].decode(encoding, errors)
            k, at = k + 1, at + 1
            yield _read_file(shown, shown, shown[n:], options) if check else new(Found, (shown, shown[n:], -1, None, None))
        if kind == EVENT_LEFT_OUT or kind == EVENT_USED:
            left_rows.append((kind, path, value, index, source, pattern))
        elif kind == EVENT_SYMLINK:
            shown = fsdecode(path)
            yield _symlink(shown, shown, shown[n:], options, root_real)
        elif kind == EVENT_SPECIAL:
            yield special_skip(fsdecode(path), value)
        elif kind == EVENT_UNREADABLE:
            shown = fsdecode(path)
            yield Unreadable(shown, OSError(value, os.strerror(value), shown))
        elif kind == EVENT_WALKED:
            walked = True
    left = options.left_out
    if left is None:
        return
    if walked:
        left.walked += 1
    for kind, path, value, index, source, pattern in left_rows:
        if kind == EVENT_USED:
            (left.exclude_used if value == 0 else left.include_used).add(index)
            continue
        why = WHY[value]
        if why == "hidden" or why == "include":
            key: tuple = (why,)
        elif why == "exclude":
            key = ("exclude", index)
        else:
            key = (why, fsdecode(source), pattern)
        left.add(key, fsdecode(path))


__all__ = ["NativeWalkUnavailable", "bailed", "dir_events", "events_of", "request", "usable", "why_not"]
