"""The directory walker behind `slopfast aggregate` (docs/cli.md).

walk(paths, options) yields, in a stable order, one event per file it meets:

- `Found(path, rel, size)`: a text file to aggregate. `path` is what the
  document shows and what the reader opens: the PATH argument joined with
  the path below it, '/'-separated (a PATH of "." adds no prefix).
- `Skipped(path, reason, detail)`: a file left out on purpose (binary, too
  large, a directory symlink, a special file), with a note for stderr.
- `Unreadable(path, error)`: a file that could not be opened or stat'ed.

Order: each PATH argument in the order given; below a directory, files in the
byte order of their path relative to it (as `git ls-files` sorts), so the
output does not depend on the file system's listing order.

Filters, applied to what the walk finds below a directory argument (a file
named on the command line is always taken, but still checked for binary
content and size):

- `.gitignore` files at every level in and below a directory argument, and
  above it up to the top of its git work tree (a directory holding `.git`),
  with git's semantics (pathspec's GitIgnoreSpec: negation, anchored and
  directory-only patterns; a deeper file overrides a shallower one; an
  ignored directory is not entered, so nothing below it comes back);
- hidden names (a leading '.') unless `hidden`; `.git` directories always;
- `exclude` patterns (gitignore syntax, relative to the directory argument;
  a matching directory is not entered) and `include` patterns (when given,
  a file must match one);
- symlinks: a symlink to a file is followed and shown under the link's own
  path; a symlink to a directory is not followed (no cycles, no escaping
  the tree) and is reported as skipped; a dangling or looping symlink is
  unreadable;
- binary files: a NUL byte in the first 8 KiB (only that prefix is read);
- files larger than `max_file_size` bytes (None: no limit).
"""
from __future__ import annotations

import errno
import os
import stat
from typing import TYPE_CHECKING, Iterable, Iterator, NamedTuple, Sequence, Union

if TYPE_CHECKING:  # pathspec is imported on first use: most trees need no matcher at all
    import pathspec

BINARY_SNIFF_BYTES = 8192

__all__ = [
    "BINARY_SNIFF_BYTES", "Found", "Skipped", "Unreadable", "WalkOptions",
    "compile_patterns", "display_prefix", "walk",
]


class Found(NamedTuple):
    path: str     # shown in the document and opened by the reader
    rel: str      # relative to the PATH argument ('/'-separated); for a file argument, == path
    size: int


class Skipped(NamedTuple):
    path: str
    reason: str   # "binary", "too-large", "directory-symlink", "special", "output"
    detail: str


class Unreadable(NamedTuple):
    path: str
    error: OSError


Event = Union[Found, Skipped, Unreadable]


class WalkOptions:
    """What the walk takes (module doc); `avoid` holds (st_dev, st_ino) of files
    never to take (the -o output file)."""

    __slots__ = ("hidden", "gitignore", "include", "exclude", "max_file_size", "avoid")

    def __init__(self, hidden: bool = False, gitignore: bool = True, include: Sequence[str] = (),
                 exclude: Sequence[str] = (), max_file_size: int | None = None,
                 avoid: frozenset = frozenset()):
        self.hidden = hidden
        self.gitignore = gitignore
        self.include = include
        self.exclude = exclude
        self.max_file_size = max_file_size
        self.avoid = avoid


def _gitignore_spec(lines: list[str]) -> "pathspec.GitIgnoreSpec":
    from pathspec import GitIgnoreSpec
    return GitIgnoreSpec.from_lines(lines)


def compile_patterns(patterns: Iterable[str]) -> "pathspec.GitIgnoreSpec | None":
    """gitignore-syntax patterns as one spec, or None when there are none."""
    lines = [p for p in patterns if p and p.strip()]
    return _gitignore_spec(lines) if lines else None


def display_prefix(path: str) -> str:
    """The prefix a PATH argument gives the paths below it ('' for '.')."""
    shown = path.replace(os.sep, "/") if os.sep != "/" else path
    if os.altsep:
        shown = shown.replace(os.altsep, "/")
    stripped = shown.rstrip("/")
    if stripped in ("", "."):
        return "/" if shown.startswith("/") else ""
    return stripped + "/"


def _sort_key(entry: os.DirEntry, is_dir: bool) -> bytes:
    # A directory sorts as "name/" so the walk yields full paths in byte order.
    return os.fsencode(entry.name) + (b"/" if is_dir else b"")


class _Ignores:
    """The .gitignore specs in force: (base, spec) from the top down.

    Bases and checked paths are relative to `top`, the repository root when
    the walk root lies inside a git work tree (so .gitignore files above the
    PATH argument apply too), else the walk root; `offset` is the walk root
    relative to `top` ('' or 'sub/dir/')."""

    __slots__ = ("layers", "offset")

    def __init__(self, layers: tuple[tuple[str, "pathspec.GitIgnoreSpec"], ...] = (), offset: str = ""):
        self.layers = layers
        self.offset = offset

    def ignored(self, rel: str) -> bool:
        # rel is relative to the walk root, '/'-separated; a directory ends in '/'.
        full = self.offset + rel
        for base, spec in reversed(self.layers):
            result = spec.check_file(full[len(base):]).include
            if result is not None:
                return result
        return False

    def push(self, dir_path: str, dir_rel: str) -> "_Ignores":
        """These ignores plus dir_path/.gitignore (dir_rel: its path relative to the walk root)."""
        spec = _read_gitignore(dir_path)
        if spec is None:
            return self
        return _Ignores(self.layers + ((self.offset + dir_rel, spec),), self.offset)


def _read_gitignore(dir_path: str) -> "pathspec.GitIgnoreSpec | None":
    try:
        with open(os.path.join(dir_path, ".gitignore"), "rb") as f:
            text = f.read().decode("utf-8", "surrogateescape")
    except OSError:
        return None
    lines = text.splitlines()
    if not any(line.strip() and not line.lstrip().startswith("#") for line in lines):
        return None
    return _gitignore_spec(lines)


def _enclosing_ignores(root: str) -> _Ignores:
    """The .gitignore files above `root` up to its git work tree's top (none outside git)."""
    here = os.path.abspath(root)
    chain = []
    d = here
    while True:
        if os.path.exists(os.path.join(d, ".git")):
            break
        parent = os.path.dirname(d)
        if parent == d:
            return _Ignores()   # not inside a work tree
        chain.append(os.path.basename(d))
        d = parent
    if not chain:
        return _Ignores()       # root is the top itself
    chain.reverse()             # names from below the top down to root
    offset = "/".join(chain) + "/"
    ignores = _Ignores((), offset)
    layers = []
    spec = _read_gitignore(d)
    if spec is not None:
        layers.append(("", spec))
    for i in range(len(chain) - 1):
        d = os.path.join(d, chain[i])
        spec = _read_gitignore(d)
        if spec is not None:
            layers.append(("/".join(chain[: i + 1]) + "/", spec))
    ignores.layers = tuple(layers)
    return ignores


def _check_file(path: str, rel: str, options: WalkOptions) -> Event:
    """Open (following symlinks), fstat and sniff one file."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        return Unreadable(path, exc)
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            return Unreadable(path, IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path))
        if not stat.S_ISREG(st.st_mode):
            return Skipped(path, "special", "not a regular file")
        if (st.st_dev, st.st_ino) in options.avoid:
            return Skipped(path, "output", "the output file")
        if options.max_file_size is not None and st.st_size > options.max_file_size:
            return Skipped(path, "too-large", f"{st.st_size} bytes > --max-file-size {options.max_file_size}")
        head = os.read(fd, BINARY_SNIFF_BYTES) if st.st_size else b""
        if b"\0" in head:
            return Skipped(path, "binary", "binary file (NUL byte in the first 8 KiB)")
        return Found(path, rel, st.st_size)
    except OSError as exc:
        return Unreadable(path, exc)
    finally:
        os.close(fd)


def _listing(dir_path: str) -> list[tuple[bytes, os.DirEntry, bool]]:
    """A directory's entries with (sort key, entry, is a real directory), sorted."""
    with os.scandir(dir_path) as it:
        entries = list(it)
    keyed = []
    for entry in entries:
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
        except OSError:
            is_dir = False
        keyed.append((_sort_key(entry, is_dir), entry, is_dir))
    keyed.sort(key=lambda k: k[0])
    return keyed


def _walk_dir(root: str, prefix: str, options: WalkOptions) -> Iterator[Event]:
    include = compile_patterns(options.include)
    exclude = compile_patterns(options.exclude)
    hidden = options.hidden
    use_gitignore = options.gitignore

    def level(dir_path: str, dir_rel: str, ignores: _Ignores):
        if use_gitignore:
            ignores = ignores.push(dir_path, dir_rel)
        try:
            listing = _listing(dir_path)
        except OSError as exc:
            shown = (prefix + dir_rel).rstrip("/") or "."
            return iter((Unreadable(shown, exc),)), ignores
        return iter(listing), ignores

    first, first_ignores = level(root, "", _enclosing_ignores(root) if use_gitignore else _Ignores())
    # Depth first with a stack of iterators: each directory's entries in
    # byte order, descending in place, so full paths come out sorted.
    stack: list[tuple[Iterator, str, str, _Ignores]] = [(first, root, "", first_ignores)]
    while stack:
        it, dir_path, dir_rel, ignores = stack[-1]
        item = next(it, None)
        if item is None:
            stack.pop()
            continue
        if isinstance(item, Unreadable):
            yield item
            continue
        _, entry, is_dir = item
        name = entry.name
        if name == ".git" or (not hidden and name.startswith(".")):
            continue
        rel = dir_rel + name
        if is_dir:
            rel_d = rel + "/"
            if use_gitignore and ignores.ignored(rel_d):
                continue
            if exclude is not None and exclude.match_file(rel_d):
                continue
            sub_path = os.path.join(dir_path, name)
            sub_it, sub_ignores = level(sub_path, rel_d, ignores)
            stack.append((sub_it, sub_path, rel_d, sub_ignores))
            continue
        if use_gitignore and ignores.ignored(rel):
            continue
        if exclude is not None and exclude.match_file(rel):
            continue
        if include is not None and not include.match_file(rel):
            continue
        shown = prefix + rel
        if entry.is_symlink():
            try:
                target_is_dir = entry.is_dir(follow_symlinks=True)
            except OSError:
                target_is_dir = False
            if target_is_dir:
                yield Skipped(shown, "directory-symlink", "symlink to a directory (not followed)")
                continue
        # The reader opens `shown`; sniff the file through that very name.
        yield _check_file(shown, rel, options)


def walk(paths: Sequence[str], options: WalkOptions | None = None) -> Iterator[Event]:
    """Events for every file under `paths`, in a stable order (module doc).

    A PATH that does not exist yields Unreadable; callers that want a usage
    error check existence first. A path met twice (by two PATH arguments)
    is yielded once."""
    options = options or WalkOptions()
    seen: set[str] = set()
    for path in paths:
        if os.path.isdir(path):  # a directory, or a symlink to one named explicitly
            events = _walk_dir(path, display_prefix(path), options)
        else:
            shown = path.replace(os.sep, "/") if os.sep != "/" else path
            events = iter((_check_file(shown, shown, options),))
        for event in events:
            key = os.path.normpath(event.path)
            if key in seen:
                continue
            seen.add(key)
            yield event
