"""The directory walker behind `slopfast aggregate` (docs/cli.md, "What is taken").

walk(paths, options) yields, in a stable order, one event per file it meets:

- `Found(path, rel, size, content, ident)`: a regular text file to aggregate.
  `path` is what the document shows and what the reader opens: the PATH
  argument joined with the path below it, '/'-separated (a PATH of "." adds
  no prefix). `ident` is (st_dev, st_ino) of the file the walk vetted: the
  reader should check its open descriptor against it. `content` is set only
  for a followed symlink: its bytes, read from the descriptor the walk
  vetted, so the reader never follows the link itself.
- `Skipped(path, reason, detail)`: a file left out on purpose (binary, too
  large, a symlink not followed, a special file, the output itself), with a
  note for stderr.
- `Unreadable(path, error)`: a file that could not be opened or stat'ed.

A path given as `Listed` (a file list's entry, `slopfast aggregate -`) is taken
as a file named on the command line; a directory there is skipped, not walked.
`WalkOptions.left_out` (a LeftOut) collects what the rules below left out, by
rule, for the command's hint when nothing is included.

Order: each PATH argument in the order given; below a directory, files in the
byte order of their path relative to it (as `git ls-files` sorts), so the
output does not depend on the file system's listing order. A path met twice
is yielded once.

What is left out below a directory argument (a file or directory named on
the command line is always taken or walked):

1. `.git` (file or directory), always; hidden names (a leading '.') unless
   `hidden`.
2. git's ignore rules (`gitignore`): inside a git work tree exactly what
   `git ls-files --cached --others --exclude-standard` leaves out
   (slopfast.ignore: .gitignore files from the top of the work tree down,
   info/exclude, core.excludesFile; a tracked file is kept even when a rule
   matches it, as git lists it; a nested repository is walked with its own
   rules and index). Outside a work tree, core.excludesFile and the
   .gitignore files in and below the PATH argument.
3. The tool's own rules: `.slopfastignore` files (same syntax and placement
   as .gitignore, from the top of the work tree or the PATH argument down),
   preceded by DEFAULT_IGNORES when git's rules are not used (outside a work
   tree, or gitignore off) and `default_ignores`. They are evaluated on
   their own: a tracked file they match is left out.
4. `exclude` patterns (a matching directory is not entered), then
   `include` patterns (when given, a file must match one), both relative to
   the PATH argument, read as a .gitignore there would be.

What is never opened: special files (FIFOs, sockets, devices: decided from
the directory entry's type, never by opening), symlinks to directories (not
followed, unless `follow_symlinks`, which skips those that would loop), and
symlinks whose target lies outside the PATH argument's tree (its real path),
or is hidden (unless `hidden`) or inside .git (unless `follow_symlinks`). A
regular file is opened with O_NOFOLLOW | O_NONBLOCK and fstat'ed: anything
but a regular file by then is skipped, so a file swapped for a FIFO or a
symlink during the walk is never read. Then: the output file (`avoid`),
files larger than `max_file_size`, binary files (a NUL byte in the first
8 KiB; only that prefix is read) are skipped with a note.

A directory argument is walked by the C core where it can be (the walk op,
lib/walk.c, through slopfast.walk_native: the same events, and the same
LeftOut), else by `_walk_dir` here, the oracle the C walk is tested against;
`walk(..., native=)` and docs/internals.md ("The native walk") say when.
"""
from __future__ import annotations

import errno
import os
import stat

from .wire import SNIFF_BYTES as BINARY_SNIFF_BYTES   # the aggregate op's sniff, too

TYPE_CHECKING = False   # typing.TYPE_CHECKING, without importing typing (its cost is start-up)
if TYPE_CHECKING:
    from typing import Iterable, Iterator, NamedTuple, Sequence, Union

    from .ignore import Patterns   # slopfast.ignore is imported when a directory is walked
else:
    from ._named import NamedTuple

__all__ = [
    "BINARY_SNIFF_BYTES", "Found", "LeftOut", "Listed", "PatternError", "Skipped", "Unreadable", "WalkOptions",
    "binary_skip", "became_symlink_skip", "compile_patterns", "display_prefix", "output_skip",
    "special_skip", "too_large_skip", "walk",
]


class Found(NamedTuple):
    path: str     # shown in the document and opened by the reader
    rel: str      # relative to the PATH argument ('/'-separated); for a file argument, == path
    size: int
    content: bytes | None = None              # a followed symlink's bytes (the reader never follows it)
    ident: tuple[int, int] | None = None      # (st_dev, st_ino) of the file the walk vetted


class Skipped(NamedTuple):
    path: str
    # "binary", "too-large", "directory-symlink", "symlink-outside", "symlink-hidden",
    # "symlink-loop", "special", "changed", "output", "listed-directory"
    reason: str
    detail: str


class Unreadable(NamedTuple):
    path: str
    error: OSError


if TYPE_CHECKING:
    Event = Union[Found, Skipped, Unreadable]


class PatternError(ValueError):
    """A command-line pattern (--include, --exclude, --full) that can match nothing."""

    def __init__(self, pattern: str, reason: str, option: str = "pattern"):
        super().__init__(f"{option} {pattern!r}: {reason}")
        self.pattern = pattern
        self.reason = reason
        self.option = option


class Listed(str):
    """A path from a file list (`slopfast aggregate -`): taken as a file named on the
    command line is (no ignore rule, the safety checks), but a directory is skipped
    (reason "listed-directory"), not walked."""

    __slots__ = ()


class LeftOut:
    """What a walk left out by its rules, and why (WalkOptions.left_out), for
    messages: `counts[key]` entries left out (a directory counts once: nothing
    below it is visited) and `first[key]`, the first path shown so left out.

    Keys: ("hidden",) a hidden name; ("git", source, pattern) git's rules and
    ("ignore", source, pattern) the tool's own (.slopfastignore, the default
    ignores), `source` the ignore file's path (or ignore.DEFAULT_RULES_SOURCE),
    `pattern` the rule as written (bytes); ("exclude", index) an --exclude
    pattern; ("include",) a file no --include pattern matched. Also:
    `include_used` / `exclude_used`, the indices of the --include / --exclude
    patterns that decided for some path; `walked`, the directory arguments
    walked; `native`, those of them the C walk walked (the rest the Python
    walk); `listed`, the paths read from a file list."""

    __slots__ = ("counts", "first", "include_used", "exclude_used", "walked", "native", "listed")

    def __init__(self) -> None:
        self.counts: dict[tuple, int] = {}
        self.first: dict[tuple, str] = {}
        self.include_used: set[int] = set()
        self.exclude_used: set[int] = set()
        self.walked = 0
        self.native = 0
        self.listed = 0

    def add(self, key: tuple, path: str) -> None:
        n = self.counts.get(key)
        if n is None:
            self.counts[key] = 1
            self.first[key] = path
        else:
            self.counts[key] = n + 1


class WalkOptions:
    """What the walk takes (module doc). `include` and `exclude` are pattern
    strings or compiled Patterns; `avoid` holds (st_dev, st_ino) of files never
    to take (the output file, a stdout redirected into the tree).
    `check_files=False` yields a regular file met in a directory as
    Found(path, rel, -1) without opening it: its reader makes the checks on
    the descriptor it reads (the aggregate op's load checks), so each file
    is opened once. `left_out`, a LeftOut, is filled with what the rules left
    out (counted only where something is left out: the walk's cost per file
    taken does not change)."""

    __slots__ = ("hidden", "gitignore", "include", "exclude", "max_file_size", "avoid",
                 "follow_symlinks", "default_ignores", "check_files", "left_out")

    def __init__(self, hidden: bool = False, gitignore: bool = True, include: Sequence[str] | "Patterns" | None = (),
                 exclude: Sequence[str] | "Patterns" | None = (), max_file_size: int | None = None,
                 avoid: frozenset = frozenset(), follow_symlinks: bool = False, default_ignores: bool = True,
                 check_files: bool = True, left_out: LeftOut | None = None):
        self.hidden = hidden
        self.gitignore = gitignore
        self.include = include
        self.exclude = exclude
        self.max_file_size = max_file_size
        self.avoid = avoid
        self.follow_symlinks = follow_symlinks
        self.default_ignores = default_ignores
        self.check_files = check_files
        self.left_out = left_out


def compile_patterns(patterns: Iterable[str], option: str = "pattern") -> "Patterns | None":
    """gitignore-syntax patterns (one per argument, taken as is) as one Patterns,
    or None when there are none; PatternError for one that can match nothing."""
    patterns = list(patterns)
    if not patterns:
        return None
    from .ignore import compile_patterns as compile_
    return compile_(patterns, option)


def _patterns(value, option: str) -> "Patterns | None":
    if value is None or hasattr(value, "match_file"):
        return value
    return compile_patterns(value, option)


def display_prefix(path: str) -> str:
    """The prefix a PATH argument gives the paths below it ('' for '.')."""
    shown = path.replace(os.sep, "/") if os.sep != "/" else path
    if os.altsep:
        shown = shown.replace(os.altsep, "/")
    stripped = shown.rstrip("/")
    if stripped in ("", "."):
        return "/" if shown.startswith("/") else ""
    return stripped + "/"


# ---- one file ----------------------------------------------------------------------------

_OPEN = (os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)
         | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0))
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)

_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"))


def _kind(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def special_skip(path: str, mode: int, what: str = "") -> Skipped:
    kind = _kind(mode)
    detail = "not a regular file" if kind == "not a regular file" else f"not a regular file ({kind})"
    return Skipped(path, "special", what + detail)


def _wide_bom(head: bytes) -> bool:
    from .fallbacks.aggregate import wide_bom
    return wide_bom(head)


def binary_skip(path: str) -> Skipped:
    return Skipped(path, "binary", f"binary file (NUL byte in the first {BINARY_SNIFF_BYTES // 1024} KiB)")


def too_large_skip(path: str, size: int, limit: int | None, *, more: bool = False) -> Skipped:
    return Skipped(path, "too-large", f"{size}{'+' if more else ''} bytes > --max-file-size {limit}")


def became_symlink_skip(path: str) -> Skipped:
    return Skipped(path, "changed", "became a symlink during the walk (not followed)")


def output_skip(path: str) -> Skipped:
    return Skipped(path, "output", "the output file")


def _read_file(path: str, shown: str, rel: str, options: WalkOptions, *, follow: bool = False,
               expect: tuple[int, int] | None = None) -> Event:
    """Open one file (O_NONBLOCK; O_NOFOLLOW unless `follow`), check on the descriptor
    that it is a regular file (the one stat'ed as `expect`), not the output, not too
    large, not binary. A followed symlink's content is read whole (Found.content)."""
    try:
        fd = os.open(path, _OPEN | (0 if follow else _NOFOLLOW))
    except OSError as exc:
        if not follow and exc.errno in (errno.ELOOP, errno.EMLINK) and os.path.islink(path):
            return became_symlink_skip(shown)
        return Unreadable(shown, exc)
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            return Unreadable(shown, IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), shown))
        if not stat.S_ISREG(st.st_mode):
            return special_skip(shown, st.st_mode)
        ident = (st.st_dev, st.st_ino)
        if expect is not None and ident != expect:
            return Skipped(shown, "changed", "changed during the walk (not read)")
        if ident in options.avoid:
            return output_skip(shown)
        limit = options.max_file_size
        if limit is not None and st.st_size > limit:
            return too_large_skip(shown, st.st_size, limit)
        if follow:
            chunks, total = [], 0
            while True:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
                if limit is not None and total > limit:
                    return too_large_skip(shown, total, limit, more=True)
            content = b"".join(chunks)
            head = content[:BINARY_SNIFF_BYTES]
        else:
            content = None
            head = os.read(fd, BINARY_SNIFF_BYTES) if st.st_size else b""
        if b"\0" in head and not _wide_bom(head):   # UTF-16/32 with a BOM is text (as the aggregate op's sniff)
            return binary_skip(shown)
        return Found(shown, rel, st.st_size if content is None else len(content), content, ident)
    except OSError as exc:
        return Unreadable(shown, exc)
    finally:
        os.close(fd)


def _inside(target: str, tree: str) -> str | None:
    """target's path below tree (both real paths), or None when it lies outside."""
    if target == tree:
        return ""
    base = tree if tree.endswith(os.sep) else tree + os.sep
    return target[len(base):] if target.startswith(base) else None


def _symlink(path: str, shown: str, rel: str, options: WalkOptions, tree: str) -> Event:
    """A symlink met by the walk (not followed to a directory here): followed only to a
    regular file inside `tree` (a real path) that is neither hidden nor in .git."""
    try:
        st = os.stat(path)
    except OSError as exc:
        return Unreadable(shown, exc)    # dangling, or a loop
    if stat.S_ISDIR(st.st_mode):
        return Skipped(shown, "directory-symlink", "symlink to a directory (not followed)")
    if not stat.S_ISREG(st.st_mode):
        return special_skip(shown, st.st_mode, "symlink to a file that is ")
    if not options.follow_symlinks:
        below = _inside(os.path.realpath(path), tree)
        if below is None:
            return Skipped(shown, "symlink-outside",
                           "symlink to a file outside the tree walked (not followed; --follow-symlinks follows it)")
        parts = below.split(os.sep)
        if ".git" in parts or (not options.hidden and any(p.startswith(".") for p in parts)):
            return Skipped(shown, "symlink-hidden", "symlink to a hidden file or into .git (not followed)")
    return _read_file(path, shown, rel, options, follow=True, expect=(st.st_dev, st.st_ino))


def _file_argument(path: str, options: WalkOptions) -> Event:
    """A file named on the command line (or in a file list, Listed): no ignore rule
    applies, the safety checks do."""
    shown = str(path).replace(os.sep, "/") if os.sep != "/" else str(path)
    try:
        st = os.lstat(path)
    except OSError as exc:
        return Unreadable(shown, exc)
    if isinstance(path, Listed) and stat.S_ISDIR(st.st_mode):
        return Skipped(shown, "listed-directory", "a directory in the file list (not walked: name it as a PATH to walk it)")
    if stat.S_ISLNK(st.st_mode):
        return _symlink(path, shown, shown, options, os.path.realpath(os.path.dirname(os.path.abspath(path))))
    if stat.S_ISREG(st.st_mode):
        return _read_file(path, shown, shown, options) if options.check_files else Found(shown, shown, -1)
    if stat.S_ISDIR(st.st_mode):
        return Unreadable(shown, IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), shown))
    return special_skip(shown, st.st_mode)


# ---- a directory -------------------------------------------------------------------------

_WINDOWS = os.name == "nt"
_IO_REPARSE_TAG_MOUNT_POINT = 0xA0000003      # a junction's tag (stat has it on Windows only)


def _is_junction(entry: os.DirEntry) -> bool:
    """A Windows junction, which os.scandir calls a directory: a link to a
    directory anywhere, so it is judged as a symlink is (not followed, but
    with --follow-symlinks). Its reparse tag comes with the listing."""
    if not _WINDOWS:
        return False
    try:
        return entry.stat(follow_symlinks=False).st_reparse_tag == _IO_REPARSE_TAG_MOUNT_POINT
    except OSError:
        return False


def _listing(dir_path: str, follow: bool) -> list:
    """A directory's entries as (sort key, entry, name bytes, walked as a directory),
    sorted: a directory sorts as "name/", so full paths come out in byte order."""
    with os.scandir(dir_path) as it:
        entries = list(it)
    keyed = []
    for entry in entries:
        try:
            is_dir = entry.is_dir(follow_symlinks=False) and not _is_junction(entry)
            if not is_dir and follow and (entry.is_symlink() or _is_junction(entry)):
                is_dir = entry.is_dir(follow_symlinks=True)
        except OSError:
            is_dir = False
        name = os.fsencode(entry.name)
        keyed.append((name + b"/" if is_dir else name, entry, name, is_dir))
    keyed.sort(key=lambda k: k[0])
    return keyed


class _Dir:
    """A directory being walked, with the rules in force in it."""

    __slots__ = ("it", "path", "rel", "relb", "git", "git_rel", "tracked_only", "own", "own_rel",
                 "include_all", "ident")

    def __init__(self, it, path, rel, relb, git, git_rel, tracked_only, own, own_rel, include_all, ident):
        self.it = it
        self.path = path                  # to open it (as given, joined)
        self.rel = rel                    # relative to the PATH argument, '' or 'a/b/'
        self.relb = relb                  # the same in bytes
        self.git = git                    # (Repo | None, layers) of git's rules, or None (gitignore off)
        self.git_rel = git_rel            # this directory relative to git's top (b'' or b'a/b/')
        self.tracked_only = tracked_only  # git ignores this directory: only tracked files below
                                          # (then the LeftOut key of the rule that ignores it)
        self.own = own                    # layers of the tool's own rules (defaults, .slopfastignore)
        self.own_rel = own_rel            # relative to their top
        self.include_all = include_all    # an --include pattern matched a directory above
        self.ident = ident                # (st_dev, st_ino) when following symlinks (loop check)


def _fold(git: tuple | None) -> bool:
    """Do the ignore files' patterns fold case here? With git's rules on, in a
    work tree whose core.ignoreCase is true (the defaults and the command's
    patterns never fold)."""
    return git is not None and git[0] is not None and git[0].ignore_case


def _setup(root: str, options: WalkOptions) -> tuple:
    """What a directory argument's walk starts from, read once: (root_real, repo,
    git, own, offset): git's rules from outside the tree as (Repo | None, layers)
    (None: gitignore off), the tool's own layers, and the argument's path below
    the top of its work tree (b'' or b'a/b/'), the ignore files above it read."""
    from . import ignore as ig

    root_real = os.path.realpath(root)
    repo = ig.find_work_tree(root_real)
    top = repo.top if repo is not None else root_real
    git = None
    if options.gitignore:
        if repo is not None:
            git = (repo, tuple(repo.base_layers()))
        else:
            excludes = ig.user_excludes_file(os.getcwd())
            rules = ig.read_ignore_file(excludes, follow=True) if excludes else None
            git = (None, (rules,) if rules is not None else ())
    own: tuple = ()
    if options.default_ignores and (repo is None or not options.gitignore):
        own = (ig.default_rules(),)

    # The ignore files above the PATH argument, from the top of its work tree down.
    below_top = os.path.relpath(root_real, top)
    offset = b"" if below_top == "." else os.fsencode(below_top.replace(os.sep, "/")) + b"/"
    d, base = top, b""
    fold = _fold(git)
    for part in (below_top.split(os.sep) if offset else ()):
        if git is not None:
            rules = ig.read_ignore_file(os.path.join(d, ".gitignore"), base, fold=fold)
            if rules is not None:
                git = (git[0], git[1] + (rules,))
        rules = ig.read_ignore_file(os.path.join(d, ig.IGNORE_FILE), base, fold=fold)
        if rules is not None:
            own += (rules,)
        d = os.path.join(d, part)
        base += os.fsencode(part) + b"/"
    return root_real, repo, git, own, offset


def _walk_dir(root: str, prefix: str, options: WalkOptions, include, exclude, setup=None) -> Iterator[Event]:
    from . import ignore as ig

    hidden = options.hidden
    follow = options.follow_symlinks
    root_real, repo, git, own, offset = setup if setup is not None else _setup(root, options)

    active: set = set()    # (st_dev, st_ino) of the directories being walked (follow_symlinks)

    def enter(path: str, rel: str, relb: bytes, git, git_rel: bytes, tracked_only: bool, own, own_rel: bytes,
              include_all: bool, ident) -> _Dir | Unreadable:
        try:
            listing = _listing(path, follow)
        except OSError as exc:
            return Unreadable((prefix + rel).rstrip("/") or ".", exc)
        names = {entry.name for _, entry, _, _ in listing}
        if git is not None and relb and ".git" in names:
            nested = ig.repo_at(path)     # a repository inside: its own rules and index
            if nested is not None:
                git, git_rel, tracked_only = (nested, tuple(nested.base_layers())), b"", False
        if git is not None and not tracked_only and ".gitignore" in names:
            rules = ig.read_ignore_file(os.path.join(path, ".gitignore"), git_rel, fold=_fold(git))
            if rules is not None:
                git = (git[0], git[1] + (rules,))
        if ig.IGNORE_FILE in names:
            rules = ig.read_ignore_file(os.path.join(path, ig.IGNORE_FILE), own_rel, fold=_fold(git))
            if rules is not None:
                own = own + (rules,)
        return _Dir(iter(listing), path, rel, relb, git, git_rel, tracked_only, own, own_rel, include_all, ident)

    root_ident = None
    if follow:
        try:
            st = os.stat(root)
            root_ident = (st.st_dev, st.st_ino)
            active.add(root_ident)
        except OSError:
            pass
    first = enter(root, "", b"", git, offset, False, own, offset, False, root_ident)
    if isinstance(first, Unreadable):
        yield first
        return
    stack = [first]
    deciding = ig.deciding_rule
    left = options.left_out if options.left_out is not None else LeftOut()
    left.walked += 1
    exclude_rules = exclude.rules if exclude is not None else None
    include_rules = include.rules if include is not None else None
    while stack:
        f = stack[-1]
        item = next(f.it, None)
        if item is None:
            stack.pop()
            active.discard(f.ident)
            continue
        _, entry, nameb, is_dir = item
        name = entry.name
        if name == ".git" or (not hidden and name[0] == "."):
            if name != ".git":
                left.add(("hidden",), prefix + f.rel + name)
            continue
        relb = f.relb + nameb
        tracked_only = False
        if f.git is not None:
            repo_, layers = f.git
            grel = f.git_rel + nameb
            if f.tracked_only:
                if not (repo_.has_tracked_below(grel) if is_dir else repo_.is_tracked(grel)):
                    left.add(f.tracked_only, prefix + f.rel + name)
                    continue
                tracked_only = f.tracked_only if is_dir else False
            elif layers:
                why = deciding(layers, grel, is_dir)
                if why is not None:
                    # git lists a tracked file whatever its rules say, and enters an
                    # ignored directory only for the tracked files below it
                    key = ("git", why[0].source, why[0].rules[why[1]].pattern)
                    if repo_ is None or not (repo_.has_tracked_below(grel) if is_dir else repo_.is_tracked(grel)):
                        left.add(key, prefix + f.rel + name)
                        continue
                    tracked_only = key if is_dir else False
        if f.own:
            why = deciding(f.own, f.own_rel + nameb, is_dir)
            if why is not None:
                left.add(("ignore", why[0].source, why[0].rules[why[1]].pattern), prefix + f.rel + name)
                continue
        if exclude_rules is not None:
            k = exclude_rules.last(relb, nameb, is_dir)
            if k >= 0:
                left.exclude_used.add(k)
                if not exclude_rules.rules[k].negative:
                    left.add(("exclude", k), prefix + f.rel + name)
                    continue
        rel = f.rel + name
        if is_dir:
            sub_path = os.path.join(f.path, name)
            ident = None
            if follow:
                try:
                    st = os.stat(sub_path)
                except OSError as exc:
                    yield Unreadable(prefix + rel, exc)
                    continue
                ident = (st.st_dev, st.st_ino)
                if ident in active:
                    yield Skipped(prefix + rel, "symlink-loop", "symlink to a directory above it (not followed: a loop)")
                    continue
            include_all = f.include_all
            if not include_all and include_rules is not None:
                k = include_rules.last(relb, nameb, True)
                if k >= 0 and not include_rules.rules[k].negative:
                    include_all = True
                    left.include_used.add(k)
            sub = enter(sub_path, rel + "/", relb + b"/", f.git, f.git_rel + nameb + b"/", tracked_only,
                        f.own, f.own_rel + nameb + b"/", include_all, ident)
            if isinstance(sub, Unreadable):
                yield sub
                continue
            if ident is not None:
                active.add(ident)
            stack.append(sub)
            continue
        if include_rules is not None and not f.include_all:
            k = include_rules.last(relb, nameb, False)
            if k < 0 or include_rules.rules[k].negative:
                left.add(("include",), prefix + rel)
                continue
            left.include_used.add(k)
        shown = prefix + rel
        try:
            is_link = entry.is_symlink() or _is_junction(entry)
            is_file = not is_link and entry.is_file(follow_symlinks=False)
        except OSError as exc:
            yield Unreadable(shown, exc)
            continue
        if is_link:
            yield _symlink(shown, shown, rel, options, root_real)
        elif is_file:
            yield _read_file(shown, shown, rel, options) if options.check_files else Found(shown, rel, -1)
        else:
            # a FIFO, socket or device: decided from the entry, never opened
            try:
                mode = entry.stat(follow_symlinks=False).st_mode
            except OSError as exc:
                yield Unreadable(shown, exc)
                continue
            if stat.S_ISREG(mode):     # the entry's type was unknown
                yield _read_file(shown, shown, rel, options) if options.check_files else Found(shown, rel, -1)
            else:
                yield special_skip(shown, mode)


def walk(paths: Sequence[str], options: WalkOptions | None = None, native: bool | None = None) -> Iterator[Event]:
    """Events for every file under `paths`, in a stable order (module doc).

    A PATH that does not exist yields Unreadable; callers that want a usage
    error check existence first. A path met twice (by two PATH arguments)
    is yielded once. Malformed `include`/`exclude` strings raise PatternError
    before anything is walked.

    `native`: walk directories with the C walk (the walk op, lib/walk.c;
    slopfast.walk_native) where it applies: None (the default) when the
    library loads and SLOPFAST_BACKEND is not `fallback`, True always (an
    error where it cannot), False never. The events are the same."""
    options = options or WalkOptions()
    include = _patterns(options.include, "--include")
    exclude = _patterns(options.exclude, "--exclude")
    return _walk(paths, options, include, exclude, native)


def _walk(paths, options, include, exclude, native=None) -> Iterator[Event]:
    # The events of one PATH argument are distinct (paths below one directory
    # are), so the first argument's paths are only noted (unless it is known
    # to be the only one), and made absolute and normal for the check when a
    # second comes (a.txt and $PWD/a.txt are one file).
    seen: set[str] | None = None
    first: list[str] | None = None if hasattr(paths, "__len__") and len(paths) < 2 else []
    use_native = None
    for path in paths:
        if seen is None and first:
            cwd = os.getcwd()
            seen = {os.path.normpath(os.path.join(cwd, p)) for p in first}
        if isinstance(path, Listed):
            if options.left_out is not None:
                options.left_out.listed += 1
            events = iter((_file_argument(path, options),))
        elif os.path.isdir(path):  # a directory, or a symlink to one named explicitly
            events = setup = None
            if use_native is None:
                from . import walk_native
                use_native = walk_native.usable(options, native)
            if use_native:
                from . import walk_native
                setup = _setup(path, options)
                events = walk_native.dir_events(path, display_prefix(path), options, include, exclude, setup)
                if events is not None and options.left_out is not None:
                    options.left_out.native += 1
            if events is None:      # not native, or a case the C walk leaves to this one
                events = _walk_dir(path, display_prefix(path), options, include, exclude, setup)
        else:
            events = iter((_file_argument(path, options),))
        if seen is None:
            for event in events:
                if first is not None:
                    first.append(event.path)
                yield event
            continue
        for event in events:
            key = os.path.normpath(os.path.join(cwd, event.path))
            if key in seen:
                continue
            seen.add(key)
            yield event
