"""The `slopfast` command: argument parsing, `main` and `aggregate` (docs/cli.md).

`bench` (slopfast.bench) and `doctor` (slopfast.doctor) are imported only
when they run, so `slopfast aggregate` and `--version` do not pay for them.

Exit codes (all subcommands):
  0  success
  1  the document is written, but some input files could not be read, or
     `aggregate` included no file at all (the summary says why)
  2  usage error (bad arguments, a PATH that does not exist)
  3  fatal: a forced native backend cannot load, the output cannot be
     written, a native/fallback mismatch, or any other error
"""
from __future__ import annotations

import gc
import io
import os
import re
import stat
import sys
import time
from types import SimpleNamespace

from . import __version__
from . import aggregate as _aggregate   # the aggregate op's module: .build() also returns the unreadable files
from . import dispatch, ops
from .errors import BackendUnavailable, SlopfastError
from .walk import (Found, LeftOut, Listed, PatternError, Skipped, Unreadable, WalkOptions, compile_patterns,
                   display_prefix, walk)

TYPE_CHECKING = False   # typing.TYPE_CHECKING, without importing typing (its cost is start-up)
if TYPE_CHECKING:
    import argparse
    from typing import Any, Callable, Iterator, Sequence, TextIO

EXIT_OK = 0
EXIT_UNREADABLE = 1
EXIT_NOTHING = 1          # aggregate included no file (as grep's "nothing selected")
EXIT_USAGE = 2
EXIT_FATAL = 3

DEFAULT_MAX_FILE_SIZE = 10 << 20
FORMATS = ("markdown", "xml", "json", "plain")
PROGRESS_DELAY = 0.5      # seconds of a run before the progress line appears (terminal only)
PROGRESS_INTERVAL = 0.1   # seconds between progress updates


class UsageError(Exception):
    """A usage problem found after argument parsing (exit code 2)."""


# ---- small helpers ------------------------------------------------------------

# patterns compile on first use (re.match); digits bounded: int() refuses over 4,300
_SIZE_RE = r"^\s*(\d{1,20})\s*([kKmMgG]?)(i?[bB])?\s*$"
_TOKENS_RE = r"\s*(\d{1,15})(?:\.(\d{1,15}))?\s*([kKmM]?)\s*"


def parse_size(text: str) -> int:
    """'4096', '512K', '10M', '1G' (binary multiples); 0 means no limit. ValueError if not a size."""
    m = re.match(_SIZE_RE, text)
    if not m:
        raise ValueError(f"not a size: {text!r} (use e.g. 4096, 512K, 10M)")
    return int(m.group(1)) << {"": 0, "k": 10, "m": 20, "g": 30}[m.group(2).lower()]


ENCODINGS = ("o200k_base", "cl100k_base")


def parse_tokens(text: str) -> int:
    """'100000', '100k', '1.5M' (decimal multiples: token budgets are quoted so). ValueError if not one."""
    m = re.fullmatch(_TOKENS_RE, text)
    if not m or (m.group(3) == "" and m.group(2) is not None):
        raise ValueError(f"not a token count: {text!r} (use e.g. 100000, 100k, 1.5M)")
    places = {"": 0, "k": 3, "m": 6}[m.group(3).lower()]
    # exact decimal arithmetic, the fraction cut at the unit: 1.0005k is 1000 tokens
    n = int(m.group(1)) * 10**places + int(((m.group(2) or "") + "0" * places)[:places] or "0")
    if n <= 0:
        raise ValueError(f"not a token count: {text!r} (it must be above 0)")
    return n


def human_bytes(n: float) -> str:
    """Binary multiples, named as such (KiB, MiB, GiB)."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def _files(n: int) -> str:
    return f"{n} file{'s' * (n != 1)}"


def _say(message: str, stream: TextIO | None = None) -> None:
    stream = stream or sys.stderr
    print(f"slopfast: {message}", file=stream)


def _oserror_text(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


class Progress:
    """A one-line progress display on stderr: only on a terminal, only for long runs."""

    def __init__(self, stream: TextIO, *, delay: float | None = None, interval: float | None = None,
                 clock: Callable[[], float] = time.monotonic, enabled: bool | None = None):
        if enabled is None:
            try:
                enabled = stream.isatty()
            except (AttributeError, ValueError):
                enabled = False
        self.stream = stream
        self.enabled = enabled
        self.clock = clock
        self.start = clock()
        self.delay = PROGRESS_DELAY if delay is None else delay
        self.interval = PROGRESS_INTERVAL if interval is None else interval
        self.last = 0.0
        self.shown = False

    def update(self, text: str, *, force: bool = False) -> None:
        if not self.enabled:
            return
        now = self.clock()
        if now - self.start < self.delay or (not force and now - self.last < self.interval):
            return
        self.last = now
        self.shown = True
        self.stream.write("\r\x1b[K" + text)
        self.stream.flush()

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.shown = False

    def note(self, message: str) -> None:
        """A line of its own (a skip note) without garbling the progress line."""
        self.clear()
        _say(message, self.stream)


def decision(op: str, size: int) -> dict | None:
    """The dispatcher's recorded decision for op at this size, if any."""
    cls = dispatch.size_class(size)
    for row in dispatch.backend_report():
        if row["op"] == op and row["size_class"] == cls:
            return row
    return None


def backend_used(log: list[tuple[str, int, str]]) -> str:
    """A short account of which backend(s) ran, from a dispatch.observe() log."""
    if not log:
        return "none (no input)"
    by_op: dict[str, set[str]] = {}
    sizes: dict[str, int] = {}
    for op, size, name in log:
        by_op.setdefault(op, set()).add(name)
        sizes[op] = size
    parts = []
    for op, names in by_op.items():
        if len(names) == 1:
            parts.append(f"{next(iter(names))} ({op})")
        else:
            row = decision(op, sizes[op]) or {}
            parts.append(f"{row.get('backend', '?')} ({op}; both ran to calibrate)")
    return ", ".join(parts)


# ---- shared with bench and doctor ----------------------------------------------

class backend_env:
    """SLOPFAST_BACKEND=value (unset for None) inside the block, restored after.
    (A class: contextlib.contextmanager would import contextlib, 1-1.5 ms of every run.)"""

    def __init__(self, value: str | None):
        self.value = value

    def __enter__(self) -> None:
        self.old = os.environ.get("SLOPFAST_BACKEND")
        _set_backend(self.value)

    def __exit__(self, *exc: object) -> None:
        _set_backend(self.old)


def _set_backend(value: str | None) -> None:
    if value is None:
        os.environ.pop("SLOPFAST_BACKEND", None)
    else:
        os.environ["SLOPFAST_BACKEND"] = value


_SOLE_PATH = {"snapshot": "msgspec"}   # what runs an op without a native path, when not "fallback"


def sole_path(op: ops.Op) -> str:
    """How to name the one path of an op with no native path by design (op_id None)."""
    return f"{_SOLE_PATH.get(op.name, 'fallback')} only"


# ---- aggregate: the file list on stdin ---------------------------------------------

STDIN_PATH = "-"
LIST_CHUNK = 1 << 16


def read_list(stream: Any, nul: bool = False) -> Iterator[Listed]:
    """The paths of a file list (docs/cli.md, "File lists"), read as the walk
    needs them: newline-separated (a CRLF's `\\r` dropped) or, with `nul`,
    NUL-separated; empty entries are skipped; names are bytes, decoded with
    os.fsdecode (invalid UTF-8 round-trips)."""
    sep = b"\0" if nul else b"\n"
    read = getattr(stream, "read1", stream.read)
    rest = b""
    while True:
        chunk = read(LIST_CHUNK)
        if not chunk:
            break
        parts = (rest + chunk).split(sep)
        rest = parts.pop()
        for part in parts:
            name = _list_entry(part, nul)
            if name is not None:
                yield name
    name = _list_entry(rest, nul)
    if name is not None:
        yield name


def _list_entry(part: bytes, nul: bool) -> Listed | None:
    if not nul and part.endswith(b"\r"):
        part = part[:-1]
    return Listed(os.fsdecode(part)) if part else None


def _stdin_buffer() -> Any:
    stdin = sys.stdin
    if stdin is None:                     # fd 0 closed at start-up: an empty list
        return io.BytesIO(b"")
    return getattr(stdin, "buffer", stdin)


def _targets(paths: Sequence[str], use_list: bool, nul: bool, quiet: bool) -> Iterator[str]:
    """The PATH arguments in order, the stdin list's paths where `-` stands
    (or after them, for --stdin)."""
    listed = False
    for path in paths:
        if path == STDIN_PATH:
            listed = True
            yield from _stdin_list(nul, quiet)
        else:
            yield path
    if use_list and not listed:
        yield from _stdin_list(nul, quiet)


def _stdin_list(nul: bool, quiet: bool) -> Iterator[Listed]:
    stream = _stdin_buffer()
    try:
        tty = sys.stdin is not None and sys.stdin.isatty()
    except (AttributeError, ValueError):
        tty = False
    if tty and not quiet:
        _say("reading the file list from the terminal (one path a line; end it with Ctrl-D)")
    return read_list(stream, nul)


def _check_list(args: argparse.Namespace, out_path: str | None) -> bool:
    """Usage checks of `-`, --stdin and -0; whether a list is read from stdin."""
    dashes = args.paths.count(STDIN_PATH)
    if dashes + bool(args.stdin) > 1:
        raise UsageError("the file list is read from stdin once: give - or --stdin, once")
    use_list = bool(dashes or args.stdin)
    if args.null and not use_list:
        raise UsageError("-0 reads the file list NUL-separated: give - or --stdin too")
    if not args.paths and not use_list:
        raise UsageError("no PATH given (name files or directories, or read a file list from stdin with - or --stdin)")
    if use_list and out_path is not None:
        try:
            st_in = os.fstat(sys.stdin.fileno())
            st_out = os.stat(out_path)
        except (OSError, ValueError, AttributeError):   # stdin without a descriptor; no output file yet
            return use_list
        if (st_in.st_dev, st_in.st_ino) == (st_out.st_dev, st_out.st_ino):
            raise UsageError(f"-o {out_path}: is the file list read from stdin (it would be emptied before it is read)")
    return use_list


# ---- aggregate: project defaults ([tool.slopfast] in pyproject.toml) ---------------------

# key: (what it may hold, the argument it sets). Keys that widen what is read
# (hidden, gitignore, default-ignores, follow-symlinks) are the command line's only.
CONFIG_KEYS = {
    "mode": ("mode", "mode"),
    "full": ("patterns", "full"),
    "include": ("patterns", "include"),
    "exclude": ("patterns", "exclude"),
    "max-file-size": ("size", "max_file_size"),
    "format": ("format", "format"),
    "line-numbers": ("bool", "line_numbers"),
    "tree": ("bool", "tree"),
    "raw": ("bool", "raw"),
    "tokens": ("bool", "tokens"),
    "encoding": ("encoding", "encoding"),
    "stats": ("bool", "stats"),
    "token-header": ("bool", "token_header"),
    "budget": ("tokens", "budget"),
}
CONFIG_COMMAND_LINE_ONLY = ("hidden", "gitignore", "default-ignores", "follow-symlinks")
_CONFIG_MENTION = rb"(?m)^\s*\[\s*tool\s*\.\s*slopfast\s*\]|^\s*\[\s*tool\s*\]"
# Only these can make a key tool.slopfast: the keys tool and slopfast joined by a
# dot (a table header, a dotted key), a [tool] table (or [[tool]]) to hold a
# slopfast key, `tool = {...}` at the top, or a quoted key written with escapes.
# A pyproject.toml that just names slopfast (this project's, a dependent's) has
# none of them, and is not given to tomllib (5-8 ms to import).
_MAY_HOLD_CONFIG = (rb"""tool["']?[ \t]*\.[ \t]*["']?slopfast|(?m:^[ \t]*\[+[ \t]*["']?tool["']?[ \t]*\])"""
                    rb"""|tool["']?[ \t]*=|\\[uU]""")


def find_config(start: str) -> str | None:
    """The pyproject.toml that holds the target's defaults: the nearest at or
    above `start` (a directory), not above the top of its git work tree."""
    d = os.path.abspath(start)
    while True:
        candidate = os.path.join(d, "pyproject.toml")
        if os.path.isfile(candidate):
            return candidate
        parent = os.path.dirname(d)
        if parent == d or os.path.exists(os.path.join(d, ".git")):
            return None
        d = parent


def read_config(path: str) -> tuple[dict, list[str]]:
    """[tool.slopfast] of a pyproject.toml as {argument: value}, and warnings;
    UsageError for a value of the wrong kind or a file that is not TOML."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        return {}, [f"{path}: not read ({_oserror_text(exc)})"]
    if b"slopfast" not in data or not re.search(_MAY_HOLD_CONFIG, data):   # no [tool.slopfast]: no TOML parser
        return {}, []
    try:
        import tomllib
    except ImportError:               # Python 3.10
        try:
            import tomli as tomllib   # type: ignore[no-redef]
        except ImportError:
            if re.search(_CONFIG_MENTION, data):
                return {}, [f"{path}: [tool.slopfast] not read: Python {sys.version_info[0]}.{sys.version_info[1]} "
                            "has no tomllib (pip install tomli, or use Python 3.11+)"]
            return {}, []
    try:
        table = tomllib.loads(data.decode("utf-8")).get("tool", {}).get("slopfast", {})
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: not valid TOML ({exc}); --no-config ignores it") from None
    if not isinstance(table, dict):
        raise UsageError(f"{path}: [tool.slopfast] must be a table")
    values: dict[str, Any] = {}
    warnings = []
    where = f"{path} [tool.slopfast]"
    for key, value in table.items():
        if key in CONFIG_COMMAND_LINE_ONLY:
            warnings.append(f"{where}: {key} ignored: it widens what is read, so only the command line sets it")
            continue
        if key not in CONFIG_KEYS:
            warnings.append(f"{where}: unknown key {key!r} ignored (known: {', '.join(CONFIG_KEYS)})")
            continue
        kind, dest = CONFIG_KEYS[key]
        values[dest] = _config_value(where, key, kind, value)
    return values, warnings


def _config_value(where: str, key: str, kind: str, value: Any) -> Any:
    def bad(what: str) -> UsageError:
        return UsageError(f"{where}: {key} must be {what}, not {value!r}")

    if kind == "bool":
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if kind == "patterns":
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise bad("a list of patterns (strings)")
        try:
            compile_patterns(value, f"{where}: {key}")     # a bad one is named where it is, not as an option
        except PatternError as exc:
            raise UsageError(str(exc)) from None
        return value
    if kind == "size":
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise bad("a size (4096, \"512K\", \"10M\"; 0: no limit)")
        if isinstance(value, int):
            if value < 0:
                raise bad("a size of 0 or more")
            return value
        try:
            return parse_size(value)
        except ValueError:
            raise bad("a size (4096, \"512K\", \"10M\"; 0: no limit)") from None
    if kind == "tokens":
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise bad("a token count (100000, \"100k\", \"1.5M\")")
        try:
            return parse_tokens(str(value))
        except ValueError:
            raise bad("a token count above 0 (100000, \"100k\", \"1.5M\")") from None
    choices = {"mode": ("full", "summary", "skeleton"), "encoding": ENCODINGS}.get(kind, FORMATS)
    if value not in choices:
        raise bad("one of " + ", ".join(choices))
    return value


def apply_config(args: argparse.Namespace, start: str) -> tuple[str | None, list[str]]:
    """Fill the options not given on the command line from the target's
    [tool.slopfast]; patterns add to the command line's. (config file or None, warnings)."""
    if args.no_config:
        return None, []
    path = find_config(start)
    if path is None:
        return None, []
    values, warnings = read_config(path)
    for dest, value in values.items():
        if dest in ("full", "include", "exclude"):
            setattr(args, dest, list(value) + list(getattr(args, dest)))
        elif getattr(args, dest) is None:
            setattr(args, dest, value)
    return (path if values else None), warnings


def _config_start(args: argparse.Namespace) -> str:
    """Where the target's pyproject.toml is looked for: the first PATH (a
    directory, or a file's directory); the current directory for a file list."""
    for path in args.paths:
        if path == STDIN_PATH:
            break
        return path if os.path.isdir(path) else (os.path.dirname(path) or ".")
    return "."


# ---- aggregate: the document side's options -----------------------------------------------

def document_keywords(args: argparse.Namespace) -> dict[str, Any]:
    """The document options the user set to something else than the
    default, as keywords of slopfast.aggregate.stream."""
    kw: dict[str, Any] = {}
    if args.format not in (None, "markdown"):
        kw["format"] = args.format
    if args.line_numbers:
        kw["line_numbers"] = True
    if args.raw:
        kw["raw"] = True
    if args.tree:
        kw["tree"] = True
    return kw


# ---- aggregate: the summary and the hints -----------------------------------------------

# Skipped.reason: (one, many, what changes it). A reason not listed gets a plain line.
SKIP_REASONS: dict[str, tuple[str, str, str]] = {
    "binary": ("binary file", "binary files", ""),
    "too-large": ("file over --max-file-size {limit}", "files over --max-file-size {limit}",
                  "--max-file-size N raises the limit"),
    "special": ("special file (a FIFO, socket or device)", "special files (FIFOs, sockets, devices)", ""),
    "symlink-outside": ("symlink to a file outside the tree walked", "symlinks to files outside the tree walked",
                        "--follow-symlinks follows them"),
    "symlink-hidden": ("symlink to a hidden file or into .git", "symlinks to hidden files or into .git",
                       "--hidden follows those to hidden files"),
    "directory-symlink": ("symlink to a directory", "symlinks to directories", "--follow-symlinks follows them"),
    "symlink-loop": ("symlink to a directory above it (a loop)", "symlinks to directories above them (loops)", ""),
    "changed": ("file that changed during the walk", "files that changed during the walk", ""),
    "listed-directory": ("directory in the file list", "directories in the file list",
                         "a list's directories are not walked: name them as PATHs"),
}
HINT_LINES = 6     # rule lines in a "nothing included" hint; the rest are counted


def size_text(n: int | None) -> str:
    """A --max-file-size value as the user would write it: 10M, 512K, 5000."""
    if not n:
        return "0"
    for shift, suffix in ((30, "G"), (20, "M"), (10, "K")):
        if n % (1 << shift) == 0:
            return f"{n >> shift}{suffix}"
    return str(n)


def count_text(n: int) -> str:
    """A count for people: 512, 48.2K, 15.1M."""
    if n < 1000:
        return str(n)
    return f"{n / 1e3:.1f}K" if n < 1_000_000 else f"{n / 1e6:.1f}M"


class RunTotals:
    """What a run of `aggregate` did, for the summary on stderr."""

    def __init__(self) -> None:
        self.files = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.tokens: int | None = None        # the document's tokens, once the library counts them
        self.skipped: dict[str, int] = {}     # by Skipped.reason (the output file itself is not counted)
        self.unreadable = 0

    def add(self, event: Any) -> None:
        if isinstance(event, Found):
            self.files += 1
            self.bytes_in += event.size
        elif isinstance(event, Skipped):
            if event.reason != "output":
                self.skipped[event.reason] = self.skipped.get(event.reason, 0) + 1
        else:
            self.unreadable += 1

    def lines(self, destination: str, *, verbose: bool = False, max_file_size: int | None = None) -> list[str]:
        """The summary: one line of totals, one per reason files were skipped, one for the unreadable."""
        wrote = human_bytes(self.bytes_out) if self.bytes_out else "nothing"
        if self.tokens is not None:
            wrote += f" ({count_text(self.tokens)} tokens)"
        totals = _files(self.files) + (f", {human_bytes(self.bytes_in)}" if self.files else "")
        out = [f"included {totals}; wrote {wrote} to {destination}"]
        ordered = [r for r in SKIP_REASONS if r in self.skipped] + sorted(r for r in self.skipped if r not in SKIP_REASONS)
        for reason in ordered:
            n = self.skipped[reason]
            one, many, remedy = SKIP_REASONS.get(reason, (f"file ({reason})", f"files ({reason})", ""))
            noun = (one if n == 1 else many).format(limit=size_text(max_file_size))
            notes = [x for x in (remedy, "" if verbose else f"-v lists {'it' if n == 1 else 'them'}") if x]
            out.append(f"skipped {n} {noun}" + (f" ({'; '.join(notes)})" if notes else ""))
        if self.unreadable:
            n = self.unreadable
            out.append(f"could not read {n} {'file or directory' if n == 1 else 'files or directories'} "
                       f"(the error{'s' * (n != 1)} above)")
        return out


STATS_TOP = 10         # files in the --stats list
STATS_DEPTH = 3        # directory levels in the --stats tree


def stats_lines(files: Sequence[tuple[str, int]], file_tokens: Sequence[int], total: int, encoding: str) -> list[str]:
    """--stats: the largest files by tokens, then the tokens under each directory."""
    width = len(f"{total:,}")
    share = lambda n: f"{100 * n / total:5.1f}%" if total else "  0.0%"   # noqa: E731
    rest = total - sum(file_tokens)
    out = [f"tokens ({encoding}): {total:,} in {_files(len(files))}; {rest:,} of them wrapper and tree"]
    # most tokens first, then in document order: the sort is stable, reversed too
    ranked = sorted(range(len(files)), key=file_tokens.__getitem__, reverse=True)[:STATS_TOP]
    if ranked:
        out.append(f"largest {len(ranked)}:")
        out += [f"  {file_tokens[i]:>{width},} {share(file_tokens[i])}  {files[i][0]}" for i in ranked]
    in_dir: dict[str | None, int] = {}     # a file's directory (None: none) -> its files' tokens
    for (path, _), n in zip(files, file_tokens):
        d = path.rpartition("/")[0] if "/" in path else None
        in_dir[d] = in_dir.get(d, 0) + n
    dirs: dict[tuple[str, ...], int] = {}
    for d, n in in_dir.items():
        parts = () if d is None else tuple(d.split("/"))
        for depth in range(min(len(parts), STATS_DEPTH) + 1):
            dirs[parts[:depth]] = dirs.get(parts[:depth], 0) + n
    if len(dirs) > 1:
        out.append("by directory:")
        for key in sorted(dirs):
            name = (key[-1] + "/") if key else "(all files)"
            out.append(f"  {dirs[key]:>{width},} {share(dirs[key])}  {'  ' * len(key)}{name}")
    return out


def _shown_file(path: str | None) -> str:
    """An ignore file's path for a message: relative to the current directory when below it."""
    if path is None:
        return "git's rules"
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return rel if not rel.startswith(os.pardir) else path


def _pattern_advice(option: str, pattern: str, dirs: Sequence[str]) -> str:
    """Why a command-line pattern may match nothing, and the likely fix."""
    if pattern.startswith("./"):
        return f"patterns are relative to the PATH argument, without ./: try {option} {_quote(pattern[2:])}"
    for d in dirs:
        prefix = display_prefix(d)
        if prefix and prefix != "/" and pattern.startswith(prefix):
            return f"patterns are relative to the PATH argument {d}: try {option} {_quote(pattern[len(prefix):])}"
    where = ", ".join(dirs)
    return f"it matches no path below {where}"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def pattern_warnings(left: LeftOut, include: Sequence[str], exclude: Sequence[str], dirs: Sequence[str]) -> list[str]:
    """A warning for each --include / --exclude pattern that decided for no path."""
    if not include and not exclude:
        return []
    if not left.walked:
        return ["warning: --include and --exclude apply below directory PATHs only "
                "(files named, or listed on stdin, are always taken)"]
    out = []
    for option, patterns, used in (("--exclude", exclude, left.exclude_used), ("--include", include, left.include_used)):
        for k, pattern in enumerate(patterns):
            if k not in used:
                out.append(f"warning: {option} {_quote(pattern)} matched nothing ({_pattern_advice(option, pattern, dirs)})")
    return out


def nothing_hint(totals: RunTotals, left: LeftOut, include: Sequence[str], exclude: Sequence[str],
                 dirs: Sequence[str], listed: bool) -> list[str]:
    """Why a run included no file, and what changes it (docs/cli.md, "When nothing is included")."""
    out = []
    total = sum(left.counts.values())
    entries = f"{total} {'entry was' if total == 1 else 'entries were'} left out by these rules:"
    if totals.skipped or totals.unreadable:
        out.append("nothing included: every file found was skipped or could not be read (see above)")
        if not left.counts:
            return out
        out.append(f"and below {', '.join(dirs)}, {entries}")
    elif not left.counts:
        if listed and not left.listed and not dirs:
            return ["nothing included: the file list on stdin was empty"]
        if dirs:
            return [f"nothing included: {', '.join(dirs)} hold{'s' * (len(dirs) == 1)} no files"]
        return ["nothing included"]
    else:
        out.append(f"nothing included: below {', '.join(dirs)}, {entries}")
    # the biggest first; hidden names last (every tree has a few: .gitignore, .github)
    keys = sorted(left.counts, key=lambda k: (k == ("hidden",), -left.counts[k]))
    for key in keys[:HINT_LINES]:
        n, first = left.counts[key], left.first[key]
        kind = key[0]
        if kind == "hidden":
            out.append(f"  {n} hidden (e.g. {first}): --hidden takes them")
        elif kind == "git":
            out.append(f"  {n} by {_shown_file(key[1])} ({_quote(os.fsdecode(key[2]))}, e.g. {first}): "
                       "--no-gitignore takes them")
        elif kind == "ignore":
            from .ignore import DEFAULT_RULES_SOURCE
            rule = _quote(os.fsdecode(key[2]))
            if key[1] == DEFAULT_RULES_SOURCE:
                out.append(f"  {n} by the default ignores ({rule}, e.g. {first}): --no-default-ignores takes them")
            else:
                out.append(f"  {n} by {_shown_file(key[1])} ({rule}, e.g. {first}): "
                           "edit that file (a ! line re-includes)")
        elif kind == "exclude":
            out.append(f"  {n} by --exclude {_quote(exclude[key[1]])} (e.g. {first})")
        else:
            shown = " ".join(f"--include {_quote(p)}" for p in include)
            out.append(f"  {n} {'file' if n == 1 else 'files'} matched no {shown} (e.g. {first}; "
                       "patterns are relative to the PATH argument)")
    if len(keys) > HINT_LINES:
        rest = sum(left.counts[k] for k in keys[HINT_LINES:])
        out.append(f"  {rest} more by {len(keys) - HINT_LINES} other rules")
    return out


# ---- aggregate ----------------------------------------------------------------

def _output_ident(out_path: str | None) -> set[tuple[int, int]]:
    """(st_dev, st_ino) of where the document goes, when that is a file the walk
    could meet: `-o FILE` if it exists, or stdout redirected to a regular file."""
    avoid = set()
    try:
        st = os.stat(out_path) if out_path is not None else os.fstat(sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):   # no such file yet; stdout closed or replaced
        return avoid
    if stat.S_ISREG(st.st_mode):
        avoid.add((st.st_dev, st.st_ino))
    return avoid


def _check_output(out_path: str) -> None:
    """-o FILE must be writable where it is: its directory exists, it is not a directory."""
    if os.path.isdir(out_path):
        raise UsageError(f"-o {out_path}: is a directory")
    parent = os.path.dirname(out_path) or "."
    if not os.path.isdir(parent):
        raise UsageError(f"-o {out_path}: no such directory {parent}")


def _pin_mmap_threshold() -> None:
    """Keep glibc's mmap threshold at its default (128 KiB). glibc raises it
    each time a block above it is freed (up to 32 MiB): the walk's and the
    batches' large blocks then come from the heap, which keeps them resident
    once freed, and a 400,000-file aggregate peaks at 99 MiB instead of
    64 (docs/benchmarks-cli.md). The command owns its process; the library
    leaves the allocator to its caller."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):    # a C library without it
        return
    mallopt(-3, 128 << 10)               # M_MMAP_THRESHOLD: setting it also ends the adjustment


def _cmd_aggregate(args: argparse.Namespace) -> int:
    """`slopfast aggregate`, without the cyclic garbage collector: the stream
    makes a few short-lived tuples per file and no cycles, reference counting
    frees them, and the collector's passes over them cost a 50,000-file run
    8-9% of its time (docs/benchmarks-cli.md). Turned back on after, for a
    caller of main() in its own process."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _run_aggregate(args)
    finally:
        if collecting:
            gc.enable()


def _run_aggregate(args: argparse.Namespace) -> int:
    _pin_mmap_threshold()
    out_path = None if args.output in (None, "-") else args.output
    use_list = _check_list(args, out_path)
    for path in args.paths:
        if path != STDIN_PATH and not os.path.lexists(path):
            raise UsageError(f"{path}: no such file or directory")
    config, config_warnings = apply_config(args, _config_start(args))
    mode = args.mode or "full"
    max_file_size = DEFAULT_MAX_FILE_SIZE if args.max_file_size is None else args.max_file_size
    if max_file_size == 0:
        max_file_size = None
    try:
        include = compile_patterns(args.include, "--include")
        exclude = compile_patterns(args.exclude, "--exclude")
        full = compile_patterns(args.full, "--full")
    except PatternError as exc:
        raise UsageError(str(exc)) from None
    document = document_keywords(args)
    count = None
    if args.token_header and args.format == "json":
        raise UsageError("--token-header: a json document has no place for a header line (--stats shows the count)")
    if args.tokens or args.encoding or args.stats or args.budget is not None or args.token_header:
        count = _aggregate._count_spec(args.encoding or True, None)   # no rank file: an error before any work

    if out_path is not None:
        _check_output(out_path)
    left = LeftOut()
    options = WalkOptions(
        hidden=bool(args.hidden),
        gitignore=not args.no_gitignore,
        include=include,
        exclude=exclude,
        max_file_size=max_file_size,
        avoid=frozenset(_output_ident(out_path)),
        follow_symlinks=bool(args.follow_symlinks),
        default_ignores=not args.no_default_ignores,
        check_files=False,
        left_out=left,
    )
    if not args.quiet:
        for warning in config_warnings:
            _say(f"warning: {warning}")
        if args.verbose and config is not None:
            _say(f"defaults from {config} [tool.slopfast]")

    t0 = time.perf_counter()
    progress = Progress(sys.stderr)
    totals = RunTotals()

    def on_event(event: Any) -> None:
        totals.add(event)
        if isinstance(event, Found):
            if progress.enabled:
                progress.update(f"slopfast: {_files(totals.files)}, {human_bytes(totals.bytes_in)}")
        elif isinstance(event, Skipped):
            if args.verbose and event.reason != "output":
                progress.note(f"skipped {event.path}: {event.detail}")
        else:   # an error: always shown
            progress.note(f"cannot read {event.path}: {_oserror_text(event.error)}")

    targets = _targets(args.paths, use_list, args.null, args.quiet) if use_list else args.paths
    events = walk(targets, options)
    with dispatch.observe() as log:
        try:
            with _open_output(out_path) as out:
                if args.budget is not None:
                    document.pop("tree", None)
                    report, levels = _aggregate.stream_budget(events, out, args.budget, count, mode=mode, full=full,
                                                              max_file_size=max_file_size, on_event=on_event,
                                                              header=bool(args.token_header), **document)
                    report = report._replace(stepped_down=levels)
                else:
                    run = _aggregate.stream_with_header if args.token_header else _aggregate.stream
                    report = run(events, out, mode=mode, full=full, max_file_size=max_file_size,
                                 on_event=on_event, count=count, **document)
        except BrokenPipeError:
            if out_path is not None:
                raise
            # the reader went away (e.g. `| head`): end quietly
            progress.clear()
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return EXIT_OK
    progress.clear()
    totals.bytes_out = report.bytes_written
    totals.tokens = report.tokens
    if not args.quiet:
        dirs = [p for p in args.paths if p != STDIN_PATH and os.path.isdir(p)]
        lines = totals.lines(out_path or "stdout", verbose=args.verbose, max_file_size=max_file_size)
        if report.stepped_down:
            lines += budget_lines(report.stepped_down, args.budget, verbose=args.verbose)
        if args.stats:
            lines += stats_lines(report.files, report.file_tokens, report.tokens, count.encoding)
        lines += pattern_warnings(left, args.include, args.exclude, dirs)
        if not totals.files:
            lines += nothing_hint(totals, left, args.include, args.exclude, dirs, use_list)
        for line in lines:
            _say(line)
    if args.verbose:
        skipped = sum(totals.skipped.values())
        _say(
            f"{_files(totals.files)}, {human_bytes(totals.bytes_in)} in, "
            f"{human_bytes(report.bytes_written)} out, {time.perf_counter() - t0:.3f} s; "
            f"{skipped} skipped, {totals.unreadable} unreadable; backend {backend_used(log)}{walk_used(left)}"
        )
    if report.unreadable:
        return EXIT_UNREADABLE
    return EXIT_OK if totals.files else EXIT_NOTHING


def walk_used(left: LeftOut) -> str:
    """Which walk listed the directory arguments, for -v's last line."""
    if not left.walked:
        return ""
    if left.native in (0, left.walked):
        return "; walk " + ("native" if left.native else "Python")
    return f"; walk native ({left.native} of {left.walked} directories), Python (the rest)"


def budget_lines(levels: dict[str, str], budget: int, *, verbose: bool = False) -> list[str]:
    """What --budget stepped down: a count per level, and with -v each file."""
    out = []
    for level, what in (("summary", "shown as a summary"), ("listed", "listed in the tree only")):
        paths = [p for p, lv in levels.items() if lv == level]
        if paths:
            out.append(f"to fit --budget {budget:,}: {_files(len(paths))} {what}"
                       + ("" if verbose else " (-v lists them)"))
            if verbose:
                out += [f"  {p}" for p in paths]
    return out


def _open_output(out_path: str | None) -> "_aggregate._Output":
    """-o FILE, or stdout: its descriptor when it has one, so the document
    goes there uncopied."""
    if out_path is not None:
        return _aggregate._Output(out_path)
    sys.stdout.flush()
    return _aggregate._Output(sys.stdout.buffer)


# ---- bench, doctor (their modules load only when they run) -----------------------

def _cmd_bench(args: argparse.Namespace) -> int:
    from . import bench
    return bench.command(args)


def _cmd_doctor(args: argparse.Namespace) -> int:
    from . import doctor
    return doctor.command(args)


# ---- argument parsing -----------------------------------------------------------

EPILOG = ("exit codes: 0 ok, 1 some files unreadable or no file included (output still written), "
          "2 usage error, 3 fatal error")


def _help_width() -> int:
    """What argparse's help takes as the terminal's width (shutil.get_terminal_size,
    less 2), without importing shutil: it loads zlib, bz2 and lzma, 5 ms a run."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return (columns or 80) - 2


# The aggregate command's options, one row each: the argparse group ("" for
# none), the flags, add_argument's keywords. build_parser makes argparse's
# parser of them; _quick_aggregate_args reads the common command lines with
# them without importing argparse (about 5 ms of every run,
# docs/benchmarks-cli.md). The destination is argparse's: the first long
# flag, dashes as underscores. A type raises ValueError on a bad value.
_DOC, _TOKENS, _TALK = "the document", "tokens (exact, as tiktoken counts them; docs/tokens.md)", "talk"
AGGREGATE_OPTIONS: tuple[tuple[str, tuple[str, ...], dict[str, Any]], ...] = (
    ("", ("-o", "--output"), dict(metavar="FILE", help="write here instead of stdout ('-': stdout)")),
    ("", ("--stdin",), dict(action="store_true",
                            help="read a list of files from stdin, one a line (after the PATHs); as a PATH of -")),
    ("", ("-0", "--null"), dict(action="store_true",
                                help="the stdin list is NUL-separated (git ls-files -z, find -print0)")),
    ("", ("--mode",), dict(choices=("full", "summary", "skeleton"), default=None,
                           help="how a file's content is shown (default full)")),
    ("", ("--full",), dict(action="append", default=[], metavar="GLOB",
                           help="files matching this gitignore-style pattern are shown in full whatever --mode says "
                                "(repeatable)")),
    ("", ("--include",), dict(action="append", default=[], metavar="GLOB",
                              help="only files matching one of these patterns (repeatable)")),
    ("", ("--exclude",), dict(action="append", default=[], metavar="GLOB",
                              help="leave out files and directories matching this pattern (repeatable)")),
    ("", ("--hidden",), dict(action="store_true", help="include hidden files and directories (.name; never .git)")),
    ("", ("--no-gitignore",), dict(action="store_true",
                                   help="ignore git's rules (.gitignore, info/exclude, core.excludesFile); "
                                        ".slopfastignore still applies")),
    ("", ("--no-default-ignores",), dict(action="store_true",
                                         help="outside a git work tree (or with --no-gitignore), do not leave out "
                                              "__pycache__/, node_modules/, .venv/, *.pyc and the like")),
    ("", ("--follow-symlinks",), dict(action="store_true",
                                      help="follow symlinks wherever they point, directories too (loops are skipped)")),
    ("", ("--max-file-size",), dict(type=parse_size, default=None, metavar="N",
                                    help="skip files larger than N bytes (suffixes K, M, G; 0: no limit; default 10M)")),
    (_DOC, ("--format",), dict(choices=FORMATS, default=None, help="the document's format (default markdown)")),
    (_DOC, ("-n", "--line-numbers"), dict(action="store_true", default=None, help="number each file's lines")),
    (_DOC, ("--raw",), dict(action="store_true", default=None,
                            help="copy file contents byte for byte (no repair to valid UTF-8)")),
    (_DOC, ("--tree",), dict(action="store_true", default=None,
                             help="end the document with the tree of its files and a summary line")),
    (_TOKENS, ("--tokens",), dict(action="store_true", default=None,
                                  help="count the document's tokens (shown in the summary)")),
    (_TOKENS, ("--encoding",), dict(choices=ENCODINGS, default=None,
                                    help="count in this encoding (default o200k_base); implies --tokens")),
    (_TOKENS, ("--token-header",), dict(action="store_true", default=None,
                                        help="start the document with a line that gives its token count "
                                             "(markdown, xml, plain)")),
    (_TOKENS, ("--stats",), dict(action="store_true", default=None,
                                 help="after the summary, the largest files by tokens and the tokens per directory")),
    (_TOKENS, ("--budget",), dict(type=parse_tokens, default=None, metavar="N",
                                  help="fit the whole document in N tokens (suffixes k, M): the largest files step "
                                       "down to a summary, then to a line in the tree; --full files never do")),
    ("", ("--no-config",), dict(action="store_true",
                                help="do not read [tool.slopfast] from the target's pyproject.toml")),
    (_TALK, ("-v", "--verbose"), dict(action="store_true",
                                      help="list each skipped file, and a line of timings and the backend at the end")),
    (_TALK, ("-q", "--quiet"), dict(action="store_true", help="no summary, notes or warnings: errors only")),
)


def _dest(flags: tuple[str, ...]) -> str:
    return next(f for f in flags if f.startswith("--"))[2:].replace("-", "_")


def _quick_aggregate_args(tokens: Sequence[str]) -> SimpleNamespace | None:
    """The aggregate options and PATHs in `tokens`, as argparse's
    parse_intermixed_args reads them, for the lines made of PATHs and options
    spelt in full (`--name value`, `--name=value`, `-x value`, `-x`); None for
    anything else (--help, abbreviations, bundled or glued short options, a
    value that looks like an option, a bad value, -v with -q, `--`), which
    argparse then reads or reports. tests/test_cli.py holds the two equal."""
    options = {flag: row for row in AGGREGATE_OPTIONS for flag in row[1]}
    values: dict[str, Any] = {"paths": []}
    for _group, flags, kw in AGGREGATE_OPTIONS:
        default = kw.get("default", False if kw.get("action") == "store_true" else None)
        values[_dest(flags)] = list(default) if isinstance(default, list) else default
    at = 0
    while at < len(tokens):
        token = tokens[at]
        at += 1
        if token[:1] != "-" or token == "-":
            values["paths"].append(token)
            continue
        name, equals, value = token.partition("=") if token.startswith("--") and token not in options else (token, "", "")
        if name not in options:
            return None
        _group, flags, kw = options[name]
        action = kw.get("action", "store")
        if action == "store_true":
            if equals:
                return None
            values[_dest(flags)] = True
            continue
        if not equals:
            if at == len(tokens) or tokens[at][:1] == "-" and tokens[at] != "-":
                return None
            value = tokens[at]
            at += 1
        try:
            value = kw["type"](value) if "type" in kw else value
        except ValueError:
            return None
        if value not in kw.get("choices", (value,)):
            return None
        if action == "append":
            values[_dest(flags)].append(value)
        else:
            values[_dest(flags)] = value
    if values["verbose"] and values["quiet"]:
        return None
    return SimpleNamespace(**values, func=_cmd_aggregate, command="aggregate")


def _argparse_type(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """`parse` for argparse, whose message for a ValueError would not be parse's."""
    import argparse

    def checked(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    checked.__name__ = parse.__name__
    return checked


def build_parser() -> argparse.ArgumentParser:
    import argparse   # here, not at the top: an aggregate run mostly does without it

    class HelpFormatter(argparse.HelpFormatter):
        def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                     width: int | None = None) -> None:
            super().__init__(prog, indent_increment, max_help_position, _help_width() if width is None else width)

    parser = argparse.ArgumentParser(
        prog="slopfast",
        formatter_class=HelpFormatter,
        description="Fast markdown context building. `slopfast COMMAND --help` shows each command's options.",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"slopfast {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    formatter = {"formatter_class": HelpFormatter}   # subparsers do not inherit it

    agg = sub.add_parser(
        "aggregate", help="many files into one markdown document",
        description="Walk PATHs (files or directories) and write one markdown document of their text files. "
                    "Defaults for some options come from [tool.slopfast] in the target's pyproject.toml.",
        epilog=EPILOG, **formatter,
    )
    agg.add_argument("paths", nargs="*", metavar="PATH",
                     help="files or directories; - reads a list of files from stdin")
    groups = {"": agg, _TALK: agg.add_mutually_exclusive_group()}
    for group, flags, kw in AGGREGATE_OPTIONS:
        if group not in groups:
            groups[group] = agg.add_argument_group(group)
        if "type" in kw:
            kw = {**kw, "type": _argparse_type(kw["type"])}
        groups[group].add_argument(*flags, **kw)
    agg.set_defaults(func=_cmd_aggregate)
    parser.aggregate_parser = agg   # type: ignore[attr-defined]  # main() parses its options intermixed

    bench = sub.add_parser(
        "bench", help="native vs fallback throughput on generated data",
        description="Benchmark every available op, native vs fallback, over input sizes, "
                    "and show what the dispatcher picks.",
        epilog=EPILOG, **formatter,
    )
    bench.add_argument("--quick", action="store_true", help="smaller inputs, shorter timings")
    bench.add_argument("--json", action="store_true", help="machine-readable output")
    bench.add_argument("--op", action="append", metavar="OP", help=f"only this op ({', '.join(op.name for op in ops.OPS if op.bench)}; repeatable)")
    bench.add_argument("--plot", metavar="FILE.png", help="throughput vs input size per backend (needs slopfast[plot])")
    bench.set_defaults(func=_cmd_bench)

    doctor = sub.add_parser(
        "doctor", help="library, build, transport, backend decisions, wisdom file",
        description="Show how slopfast will run here; fails (exit 3) when a forced native backend cannot load.",
        epilog=EPILOG, **formatter,
    )
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    doctor.set_defaults(func=_cmd_doctor)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit code (the console script exits with it)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    intermixed = argv[:1] == ["aggregate"] and "--" not in argv
    args = _quick_aggregate_args(argv[1:]) if intermixed else None
    try:
        if args is None and intermixed:
            # options may stand between PATHs (`aggregate src --hidden docs`, `a.py --stdin d`);
            # not with `--`, which argparse's intermixed parsing does not keep
            args = build_parser().aggregate_parser.parse_intermixed_args(argv[1:])
            args.command = "aggregate"
        elif args is None:
            args = build_parser().parse_args(argv)
    except SystemExit as exc:   # argparse: --help / --version (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"slopfast {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BackendUnavailable as exc:
        _say(f"error: {exc}")
        return EXIT_FATAL
    except BrokenPipeError:
        # the reader of a report went away (`slopfast doctor | head`): end quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (SlopfastError, OSError) as exc:
        _say(f"error: {exc}")
        return EXIT_FATAL
    except KeyboardInterrupt:
        return 130
