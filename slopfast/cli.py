"""The `slopfast` command: argument parsing, `main` and `aggregate` (docs/cli.md).

`bench` (slopfast.bench) and `doctor` (slopfast.doctor) are imported only
when they run, so `slopfast aggregate` and `--version` do not pay for them.

Exit codes (all subcommands):
  0  success
  1  some input files could not be read (the document is still written)
  2  usage error (bad arguments, a PATH that does not exist)
  3  fatal: a forced native backend cannot load, the output cannot be
     written, a native/fallback mismatch, or any other error
"""
from __future__ import annotations

import argparse
import contextlib
import os
import re
import stat
import sys
import time
from typing import Any, Callable, Iterator, Sequence, TextIO

from . import __version__
from . import aggregate as _aggregate   # the aggregate op's module: .build() also returns the unreadable files
from . import dispatch, ops
from .errors import BackendUnavailable, SlopfastError
from .walk import Found, PatternError, Skipped, Unreadable, WalkOptions, compile_patterns, walk

EXIT_OK = 0
EXIT_UNREADABLE = 1
EXIT_USAGE = 2
EXIT_FATAL = 3

DEFAULT_MAX_FILE_SIZE = 10 << 20
PROGRESS_DELAY = 0.5      # seconds of a run before the progress line appears (terminal only)
PROGRESS_INTERVAL = 0.1   # seconds between progress updates


class UsageError(Exception):
    """A usage problem found after argument parsing (exit code 2)."""


# ---- small helpers ------------------------------------------------------------

_SIZE_RE = re.compile(r"^\s*(\d+)\s*([kKmMgG]?)(i?[bB])?\s*$")


def parse_size(text: str) -> int:
    """'4096', '512K', '10M', '1G' (binary multiples); 0 means no limit."""
    m = _SIZE_RE.match(text)
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (use e.g. 4096, 512K, 10M)")
    return int(m.group(1)) << {"": 0, "k": 10, "m": 20, "g": 30}[m.group(2).lower()]


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


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

@contextlib.contextmanager
def backend_env(value: str | None) -> Iterator[None]:
    """SLOPFAST_BACKEND=value (unset for None) inside the block, restored after."""
    old = os.environ.get("SLOPFAST_BACKEND")
    if value is None:
        os.environ.pop("SLOPFAST_BACKEND", None)
    else:
        os.environ["SLOPFAST_BACKEND"] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("SLOPFAST_BACKEND", None)
        else:
            os.environ["SLOPFAST_BACKEND"] = old


_SOLE_PATH = {"snapshot": "msgspec"}   # what runs an op without a native path, when not "fallback"


def sole_path(op: ops.Op) -> str:
    """How to name the one path of an op with no native path by design (op_id None)."""
    return f"{_SOLE_PATH.get(op.name, 'fallback')} only"


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


def _cmd_aggregate(args: argparse.Namespace) -> int:
    for path in args.paths:
        if not os.path.lexists(path):
            raise UsageError(f"{path}: no such file or directory")
    if args.max_file_size == 0:
        args.max_file_size = None
    try:
        include = compile_patterns(args.include, "--include")
        exclude = compile_patterns(args.exclude, "--exclude")
        full = compile_patterns(args.full, "--full")
    except PatternError as exc:
        raise UsageError(str(exc)) from None

    out_path = None if args.output in (None, "-") else args.output
    if out_path is not None:
        _check_output(out_path)
    options = WalkOptions(
        hidden=args.hidden,
        gitignore=not args.no_gitignore,
        include=include,
        exclude=exclude,
        max_file_size=args.max_file_size,
        avoid=frozenset(_output_ident(out_path)),
        follow_symlinks=args.follow_symlinks,
        default_ignores=not args.no_default_ignores,
        check_files=False,
    )

    t0 = time.perf_counter()
    progress = Progress(sys.stderr)
    counts = {"files": 0, "bytes": 0, "skipped": 0, "unreadable": 0}

    def on_event(event: Any) -> None:
        if isinstance(event, Found):
            counts["files"] += 1
            counts["bytes"] += event.size
            if progress.enabled:
                progress.update(f"slopfast: {_files(counts['files'])}, {human_bytes(counts['bytes'])}")
        elif isinstance(event, Skipped):
            counts["skipped"] += 1
            if event.reason != "output":
                progress.note(f"skipped {event.path}: {event.detail}")
        else:
            counts["unreadable"] += 1
            progress.note(f"cannot read {event.path}: {_oserror_text(event.error)}")

    events = walk(args.paths, options)
    with dispatch.observe() as log:
        try:
            with _open_output(out_path) as out:
                report = _aggregate.stream(events, out, mode=args.mode, full=full,
                                           max_file_size=args.max_file_size, on_event=on_event)
        except BrokenPipeError:
            if out_path is not None:
                raise
            # the reader went away (e.g. `| head`): end quietly
            progress.clear()
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return EXIT_OK
    progress.clear()
    if args.verbose:
        _say(
            f"{_files(counts['files'])}, {human_bytes(counts['bytes'])} in, "
            f"{human_bytes(report.bytes_written)} out, {time.perf_counter() - t0:.3f} s; "
            f"{counts['skipped']} skipped, {counts['unreadable']} unreadable; backend {backend_used(log)}"
        )
    return EXIT_UNREADABLE if report.unreadable else EXIT_OK


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

EPILOG = "exit codes: 0 ok, 1 some files unreadable (output still written), 2 usage error, 3 fatal error"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="slopfast",
        description="Fast markdown context building. `slopfast COMMAND --help` shows each command's options.",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"slopfast {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    agg = sub.add_parser(
        "aggregate", help="many files into one markdown document",
        description="Walk PATHs (files or directories) and write one markdown document of their text files.",
        epilog=EPILOG,
    )
    agg.add_argument("paths", nargs="+", metavar="PATH", help="files or directories")
    agg.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout ('-': stdout)")
    agg.add_argument("--mode", choices=("full", "summary", "skeleton"), default="full",
                     help="how a file's content is shown (default full)")
    agg.add_argument("--full", action="append", default=[], metavar="GLOB",
                     help="files matching this gitignore-style pattern are shown in full whatever --mode says (repeatable)")
    agg.add_argument("--include", action="append", default=[], metavar="GLOB",
                     help="only files matching one of these patterns (repeatable)")
    agg.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                     help="leave out files and directories matching this pattern (repeatable)")
    agg.add_argument("--hidden", action="store_true", help="include hidden files and directories (.name; never .git)")
    agg.add_argument("--no-gitignore", action="store_true",
                     help="ignore git's rules (.gitignore, info/exclude, core.excludesFile); .slopfastignore still applies")
    agg.add_argument("--no-default-ignores", action="store_true",
                     help="outside a git work tree (or with --no-gitignore), do not leave out __pycache__/, "
                          "node_modules/, .venv/, *.pyc and the like")
    agg.add_argument("--follow-symlinks", action="store_true",
                     help="follow symlinks wherever they point, directories too (loops are skipped)")
    agg.add_argument("--max-file-size", type=parse_size, default=DEFAULT_MAX_FILE_SIZE, metavar="N",
                     help="skip files larger than N bytes (suffixes K, M, G; 0: no limit; default 10M)")
    agg.add_argument("-v", "--verbose", action="store_true", help="a summary line on stderr")
    agg.set_defaults(func=_cmd_aggregate)

    bench = sub.add_parser(
        "bench", help="native vs fallback throughput on generated data",
        description="Benchmark every available op, native vs fallback, over input sizes, "
                    "and show what the dispatcher picks.",
        epilog=EPILOG,
    )
    bench.add_argument("--quick", action="store_true", help="smaller inputs, shorter timings")
    bench.add_argument("--json", action="store_true", help="machine-readable output")
    bench.add_argument("--op", action="append", metavar="OP", help=f"only this op ({', '.join(op.name for op in ops.OPS if op.bench)}; repeatable)")
    bench.add_argument("--plot", metavar="FILE.png", help="throughput vs input size per backend (needs slopfast[plot])")
    bench.set_defaults(func=_cmd_bench)

    doctor = sub.add_parser(
        "doctor", help="library, build, transport, backend decisions, wisdom file",
        description="Show how slopfast will run here; fails (exit 3) when a forced native backend cannot load.",
        epilog=EPILOG,
    )
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    doctor.set_defaults(func=_cmd_doctor)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit code (the console script exits with it)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
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
