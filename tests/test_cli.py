"""The slopfast command end to end: real directory trees, subprocess and in-process."""
from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import slopfast
from slopfast import cli, dispatch, native
from slopfast.ops import OPS
from slopfast.walk import Found, LeftOut, Skipped, Unreadable, WalkOptions, display_prefix, walk

from conftest import DATA, require_native, subprocess_env

HEADING = re.compile(rb"^### `(.*)`$", re.M)
# The op behind `aggregate` (the registry row exporting build_markdown): its name in -v, bench, doctor.
AGGREGATE_OP = next(op.name for op in OPS if "build_markdown" in op.api)
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def run(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "slopfast", *args],
        cwd=cwd, env=subprocess_env(**env), capture_output=True, timeout=120,
    )


def headings(document: bytes) -> list[str]:
    return [m.decode("utf-8", "surrogateescape") for m in HEADING.findall(document)]


def write(root: Path, files: dict[str, str | bytes]) -> None:
    for rel, content in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content, encoding="utf-8")


@pytest.fixture
def agg(capsysbinary, monkeypatch):
    """In-process `slopfast aggregate ARGS` in a directory: (exit code, stdout bytes, stderr text)."""

    def call(cwd: Path, *args: str):
        monkeypatch.chdir(cwd)
        code = cli.main(["aggregate", *args])
        out, err = capsysbinary.readouterr()
        return code, out, err.decode("utf-8", "replace")

    return call


def test_aggregate_runs_without_the_cyclic_collector_and_restores_it(agg, tmp_path, monkeypatch):
    import gc
    seen = []
    monkeypatch.setattr(cli, "_pin_mmap_threshold", lambda: seen.append(gc.isenabled()))
    (tmp_path / "a.txt").write_text("a\n")
    assert gc.isenabled()
    code, out, _ = agg(tmp_path, ".")
    assert (code, seen) == (0, [False])
    assert b"a.txt" in out
    assert gc.isenabled()
    gc.disable()
    try:                                   # a caller's own setting is left as it was
        agg(tmp_path, ".")
        assert not gc.isenabled()
    finally:
        gc.enable()


# ---- .gitignore -----------------------------------------------------------------

GITIGNORE_TREE = {
    ".gitignore": "*.log\n!important.log\n/top-only.txt\nbuild/\ndocs/*.tmp\n# a comment\n\n",
    "a.py": "a = 1\n",
    "app.log": "noise\n",
    "important.log": "keep me\n",
    "top-only.txt": "ignored at the top only\n",
    "build/out.py": "ignored dir\n",
    "build": None,
    "docs/x.tmp": "anchored-ish: docs/*.tmp\n",
    "docs/deep/x.tmp": "not matched by docs/*.tmp\n",
    "docs/readme.md": "# docs\n",
    "src/top-only.txt": "not at the top: kept\n",
    "src/build": "a FILE named build: build/ only matches directories\n",
    "src/.gitignore": "!app.log\nsecret.py\n",
    "src/app.log": "re-included by src/.gitignore\n",
    "src/secret.py": "ignored by src/.gitignore\n",
    "src/ok.py": "ok\n",
    "src/nested/build/gen.py": "build/ matches at any depth\n",
    "src/nested/.gitignore": "*\n!keep.txt\n!*/\n",
    "src/nested/keep.txt": "kept by negation after *\n",
    "src/nested/drop.py": "dropped by *\n",
    "other/app.log": "still ignored by *.log\n",
}

GITIGNORE_EXPECTED = [
    "a.py",
    "docs/deep/x.tmp",
    "docs/readme.md",
    "important.log",
    "src/app.log",
    "src/build",
    "src/nested/keep.txt",
    "src/ok.py",
    "src/top-only.txt",
]


@pytest.fixture
def ignore_tree(tmp_path):
    root = tmp_path / "proj"
    write(root, {k: v for k, v in GITIGNORE_TREE.items() if v is not None})
    return root


def test_gitignore_nested_negation_anchored_and_dir_patterns(ignore_tree, agg):
    code, out, err = agg(ignore_tree, ".")
    assert code == 0, err
    assert headings(out) == GITIGNORE_EXPECTED


def test_gitignore_matches_git_itself(ignore_tree, monkeypatch):
    git = shutil.which("git")
    if git is None:
        pytest.skip("git not installed")
    subprocess.run([git, "init", "-q", str(ignore_tree)], check=True)
    listed = subprocess.run(
        [git, "-c", "core.quotepath=off", "ls-files", "--others", "--cached", "--exclude-standard"],
        cwd=ignore_tree, capture_output=True, check=True, text=True,
    ).stdout.split("\n")
    expected = sorted(p for p in listed if p and not p.rsplit("/", 1)[-1].startswith("."))
    monkeypatch.chdir(ignore_tree)
    found = [e.path for e in walk(["."], WalkOptions()) if isinstance(e, Found)]
    assert found == expected == GITIGNORE_EXPECTED


def test_no_gitignore_takes_everything_but_hidden(ignore_tree, agg):
    code, out, _ = agg(ignore_tree, ".", "--no-gitignore")
    assert code == 0
    shown = headings(out)
    assert "app.log" in shown and "build/out.py" in shown and "src/nested/drop.py" in shown
    assert not any(p.rsplit("/", 1)[-1].startswith(".") for p in shown)


def test_gitignore_above_the_path_applies_inside_a_work_tree(ignore_tree, agg):
    # the top of a work tree, as git sees it: a .git holding HEAD, objects/ and refs/
    # (an empty .git directory is not a repository to git, nor to the walk)
    for d in ("objects", "refs"):
        (ignore_tree / ".git" / d).mkdir(parents=True)
    (ignore_tree / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    code, out, _ = agg(ignore_tree / "src", ".")
    assert headings(out) == ["app.log", "build", "nested/keep.txt", "ok.py", "top-only.txt"]
    code, out, _ = agg(ignore_tree, "other")
    assert headings(out) == []   # *.log from the top .gitignore


def test_gitignore_above_the_path_ignored_outside_a_work_tree(ignore_tree, agg):
    # no .git anywhere above: only .gitignore files in and below PATH count
    if any((p / ".git").exists() for p in ignore_tree.parents):
        pytest.skip("the temp directory lies inside a git work tree")
    code, out, _ = agg(ignore_tree, "other")
    assert headings(out) == ["other/app.log"]


# ---- hidden, include/exclude, order, paths ------------------------------------------

def test_hidden_skipped_unless_asked_and_git_never(tmp_path, agg):
    write(tmp_path, {".env": "SECRET=1\n", ".config/x.toml": "a = 1\n", "v.py": "v\n",
                     ".git/config": "[core]\n", "sub/.hidden.py": "h\n"})
    assert headings(agg(tmp_path, ".")[1]) == ["v.py"]
    assert headings(agg(tmp_path, ".", "--hidden")[1]) == [".config/x.toml", ".env", "sub/.hidden.py", "v.py"]


def test_include_exclude(tmp_path, agg):
    write(tmp_path, {"a.py": "", "b.md": "", "node_modules/x.py": "", "src/c.py": "", "src/d.txt": "",
                     "src/gen/e.py": ""})
    # node_modules/ is a default ignore outside a git work tree (--no-default-ignores keeps it)
    assert headings(agg(tmp_path, ".", "--include", "*.py")[1]) == ["a.py", "src/c.py", "src/gen/e.py"]
    assert headings(agg(tmp_path, ".", "--include", "*.py", "--no-default-ignores")[1]) == [
        "a.py", "node_modules/x.py", "src/c.py", "src/gen/e.py"]
    assert headings(agg(tmp_path, ".", "--include", "*.py", "--exclude", "node_modules", "--no-default-ignores",
                        "--exclude", "src/gen/")[1]) == ["a.py", "src/c.py"]
    assert headings(agg(tmp_path, ".", "--include", "src/*.py")[1]) == ["src/c.py"]
    assert headings(agg(tmp_path, ".", "--include", "*.md", "--include", "*.txt")[1]) == ["b.md", "src/d.txt"]


def test_order_is_byte_order_of_paths_whatever_the_creation_order(tmp_path, agg):
    for rel in ["b/x.py", "b.py", "a", "B", "b-c", "_u", "z/a/b"]:
        write(tmp_path, {rel: rel})
    assert headings(agg(tmp_path, ".")[1]) == sorted(["b/x.py", "b.py", "a", "B", "b-c", "_u", "z/a/b"])


def test_paths_are_the_path_argument_joined(tmp_path, agg):
    write(tmp_path, {"proj/src/a.py": "a\n", "proj/b.md": "b\n"})
    assert headings(agg(tmp_path, "proj")[1]) == ["proj/b.md", "proj/src/a.py"]
    assert headings(agg(tmp_path, "proj/")[1]) == ["proj/b.md", "proj/src/a.py"]
    assert headings(agg(tmp_path, "./proj/src")[1]) == ["./proj/src/a.py"]
    assert headings(agg(tmp_path / "proj", ".")[1]) == ["b.md", "src/a.py"]
    assert headings(agg(tmp_path / "proj", "./")[1]) == ["b.md", "src/a.py"]
    absolute = str(tmp_path / "proj")
    assert headings(agg(tmp_path, absolute)[1]) == [f"{absolute}/b.md", f"{absolute}/src/a.py"]
    # files named explicitly come as given, in argument order; duplicates once
    assert headings(agg(tmp_path, "proj/src/a.py", "proj", "proj/b.md")[1]) == ["proj/src/a.py", "proj/b.md"]
    # one file by a relative and an absolute path: once too
    assert headings(agg(tmp_path / "proj", "b.md", f"{absolute}/b.md", ".", absolute)[1]) == ["b.md", "src/a.py"]


def test_display_prefix():
    assert display_prefix(".") == ""
    assert display_prefix("./") == ""
    assert display_prefix("src") == "src/"
    assert display_prefix("src//") == "src/"
    assert display_prefix("/") == "/"


def test_explicit_file_bypasses_hidden_and_gitignore(ignore_tree, agg):
    code, out, _ = agg(ignore_tree, "app.log", ".gitignore")
    assert code == 0
    assert headings(out) == ["app.log", ".gitignore"]


def test_unicode_names(tmp_path, agg):
    write(tmp_path, {"ünïcødé/日本語.md": "# 見出し\n", "émoji 🎉.txt": "ok\n", "plain.py": "p\n"})
    code, out, _ = agg(tmp_path, ".")
    assert code == 0
    assert headings(out) == sorted(["ünïcødé/日本語.md", "émoji 🎉.txt", "plain.py"], key=lambda s: s.encode())
    assert "# 見出し".encode() in out


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="needs a file system that takes any bytes as a name")
@pytest.mark.parametrize("backend", ["native", "fallback"])
def test_non_utf8_names_round_trip(tmp_path, backend, monkeypatch, agg):
    if backend == "native":
        require_native()
    try:
        (Path(os.fsdecode(bytes(tmp_path) + b"/caf\xe9.txt"))).write_bytes(b"latin-1 name\n")
    except OSError as exc:
        pytest.skip(f"this file system refuses the name: {exc}")
    write(tmp_path, {"d/\u00e9.txt": "utf-8 name\n"})
    monkeypatch.setenv("SLOPFAST_BACKEND", backend)
    code, out, err = agg(tmp_path, ".")
    assert code == 0, err
    assert HEADING.findall(out) == [b"caf\\xe9.txt", "d/\u00e9.txt".encode()]   # shown: a byte outside UTF-8 as \xNN
    assert b"latin-1 name\n" in out


def test_empty_directories_and_empty_files(tmp_path, agg):
    (tmp_path / "empty" / "deeper").mkdir(parents=True)
    code, out, err = agg(tmp_path, ".")
    # nothing included: exit 1 and a hint (docs/cli.md, "When nothing is included")
    assert (code, out) == (cli.EXIT_NOTHING, b"")
    assert err == "slopfast: included 0 files; wrote nothing to stdout\nslopfast: nothing included: . holds no files\n"
    assert agg(tmp_path, ".", "-q") == (cli.EXIT_NOTHING, b"", "")
    (tmp_path / "empty" / "e.txt").write_bytes(b"")
    code, out, _ = agg(tmp_path, "empty")
    assert out == b"### `empty/e.txt`\n\n```txt\n\n```\n"


# ---- binary, size, symlinks, unreadable ---------------------------------------------

def test_binary_files_skipped_with_a_note(tmp_path, agg):
    write(tmp_path, {"img.png": b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "a.txt": "text\n",
                     "late.txt": b"x" * 9000 + b"\0"})   # NUL beyond the 8 KiB prefix: text
    code, out, err = agg(tmp_path, ".")
    assert code == 0
    assert headings(out) == ["a.txt", "late.txt"]
    assert "skipped 1 binary file (-v lists it)" in err and "img.png" not in err
    code, _, err = agg(tmp_path, ".", "-v")
    assert "skipped img.png: binary file" in err and "skipped 1 binary file\n" in err


def test_max_file_size(tmp_path, agg):
    write(tmp_path, {"big.txt": "x" * 5000, "small.txt": "y"})
    code, out, err = agg(tmp_path, ".", "--max-file-size", "4K", "-v")
    assert code == 0 and headings(out) == ["small.txt"]
    assert "skipped big.txt: 5000 bytes > --max-file-size 4096" in err
    assert "skipped 1 file over --max-file-size 4K (--max-file-size N raises the limit)\n" in err
    assert headings(agg(tmp_path, ".", "--max-file-size", "0")[1]) == ["big.txt", "small.txt"]
    assert headings(agg(tmp_path, ".", "--max-file-size", "5000")[1]) == ["big.txt", "small.txt"]


def test_parse_size():
    assert cli.parse_size("4096") == 4096
    assert cli.parse_size("512K") == 512 << 10
    assert cli.parse_size("10m") == 10 << 20
    assert cli.parse_size("1GiB") == 1 << 30
    with pytest.raises(ValueError, match="not a size"):
        cli.parse_size("ten")
    with pytest.raises(ValueError, match="not a size"):   # not int()'s own limit
        cli.parse_size("9" * 5000)


def test_parse_tokens_is_exact_and_refuses_what_is_not_a_count():
    assert [cli.parse_tokens(t) for t in ("100000", "100k", "1.5M", " 2 K ", "1.001k", "1.0005k", "0.5k")] == \
        [100000, 100000, 1500000, 2000, 1001, 1000, 500]
    for text in ("1.5", "0", "0.0001k", "ten", "1e5", "9" * 16, "9" * 400, "9" * 400 + ".5k", "1." + "9" * 400 + "M"):
        with pytest.raises(ValueError, match="not a token count"):
            cli.parse_tokens(text)


def test_a_huge_budget_is_a_usage_error(tmp_path, capsys):
    write(tmp_path, {"a.txt": "a\n"})
    assert cli.main(["aggregate", str(tmp_path), "-q", "--budget", "9" * 400]) == cli.EXIT_USAGE   # was OverflowError
    assert "not a token count" in capsys.readouterr().err


# ---- the aggregate command line without argparse (cli._quick_aggregate_args) ------

def _argparse_reads(tokens: list[str]) -> dict | None:
    """What main() takes from argparse for `aggregate TOKENS`; None for its usage error, --help."""
    parser = cli.build_parser().aggregate_parser
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return {**vars(parser.parse_intermixed_args(tokens)), "command": "aggregate"}
    except SystemExit:
        return None


def _check_quick_reads_as_argparse(tokens: list[str]) -> dict | None:
    quick = cli._quick_aggregate_args(tokens)
    if "--" in tokens:      # main() never asks: argparse's intermixed parsing drops `--`
        assert quick is None
        return None
    expected = _argparse_reads(tokens)
    if expected is None:
        assert quick is None, tokens
    if quick is not None:
        assert vars(quick) == expected, tokens
    return vars(quick) if quick is not None else None


_FLAGS = [flag for _group, flags, _kw in cli.AGGREGATE_OPTIONS for flag in flags]
_VALUES = ["x.md", "-", "", "10M", "0", "512k", "ten", "1.5M", "100k", "0.5", "full", "summary", "fast",
           "markdown", "xml", "yaml", "o200k_base", "cl100k_base", "*.py", "src/", "a b", "=", "-1", "-x"]
_ODD = ["--help", "-h", "--", "--out", "--hid", "--no-git", "-vn", "-qv", "-0v", "-ox.md", "-o=x.md", "--hidden=1",
        "--output=", "--output=-", "--output=-x", "--budget=10k", "--budget=ten", "--mode=full", "--mode=fast",
        "--format=xml", "--exclude=*.log", "--=x", "--version", "-a b", "--full=", "-"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_FLAGS + _VALUES + _ODD), max_size=9))
def test_quick_args_read_a_command_line_as_argparse_does_or_leave_it_to_argparse(tokens):
    _check_quick_reads_as_argparse(tokens)


def _option_with_value(row):
    _group, flags, kw = row
    flag = st.sampled_from(flags)
    if kw.get("action") == "store_true":
        return flag.map(lambda f: [f])
    value = st.sampled_from(kw["choices"]) if "choices" in kw else st.sampled_from(
        {cli.parse_size: ["0", "4096", "10M", "1GiB"], cli.parse_tokens: ["1", "100k", "1.5M"]}.get(
            kw.get("type"), ["out.md", "-", "*.py", "src/**", "a b", "", "x=y"]))
    return st.tuples(flag, value, st.booleans()).map(lambda t: [f"{t[0]}={t[1]}"] if t[2] and t[0][1] == "-"
                                                     else [t[0], t[1]])


_TALK_FREE = [row for row in cli.AGGREGATE_OPTIONS if row[1] != ("-q", "--quiet")]   # -v with -q: argparse's error


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(["src", "-", "", "a.py", "docs/x.md", "=x"]).map(lambda p: [p]),
                          *[_option_with_value(row) for row in _TALK_FREE]), max_size=8))
def test_quick_args_read_every_option_spelt_in_full(parts):
    tokens = [t for part in parts for t in part]
    assert _check_quick_reads_as_argparse(tokens) is not None, tokens


def test_the_usual_aggregate_lines_are_read_without_argparse():
    for line in ("lib docs -o context.md", "lib docs --budget 50k --stats -o context.md", "src --hidden docs -q",
                 "--stdin -0 -o - --format xml --tree -n", "a.py --max-file-size=1M --exclude '*.log' -v"):
        assert _check_quick_reads_as_argparse(shlex.split(line)) is not None, line


needs_symlinks = pytest.mark.skipif(not hasattr(os, "symlink") or sys.platform == "win32",
                                    reason="symlinks need POSIX here")


@needs_symlinks
def test_symlinks_files_followed_directories_not(tmp_path, agg):
    write(tmp_path, {"real/a.py": "a = 1\n", "outside.txt": "outside\n"})
    root = tmp_path / "real"
    os.symlink("a.py", root / "link.py")
    os.symlink(tmp_path / "outside.txt", root / "out-link.txt")
    os.symlink(".", root / "loop")            # a directory symlink back up: a cycle if followed
    os.symlink(tmp_path, root / "parent")
    code, out, err = agg(root, ".", "-v")
    assert code == 0, err
    # a symlink to a file outside the tree is not followed (since the walk's safety rules)
    assert headings(out) == ["a.py", "link.py"]
    assert out.count(b"a = 1\n") == 2 and b"outside\n" not in out
    assert "skipped out-link.txt: symlink to a file outside the tree walked (not followed; " \
           "--follow-symlinks follows it)" in err
    assert "skipped loop: symlink to a directory (not followed)" in err
    assert "skipped parent: symlink to a directory" in err
    # a directory symlink named on the command line is walked (the tree is its target)
    assert headings(agg(root, "parent/real")[1]) == ["parent/real/a.py", "parent/real/link.py"]
    code, out, err = agg(root, ".", "--follow-symlinks", "-v")
    assert code == 0, err
    assert headings(out)[:3] == ["a.py", "link.py", "out-link.txt"] and b"outside\n" in out
    assert "skipped loop: symlink to a directory above it (not followed: a loop)" in err


@needs_symlinks
def test_dangling_and_looping_symlinks_are_unreadable(tmp_path, agg):
    write(tmp_path, {"a.py": "a\n", "z.py": "z\n"})
    os.symlink("nowhere", tmp_path / "dangling.py")
    os.symlink("loop2", tmp_path / "loop1")
    os.symlink("loop1", tmp_path / "loop2")
    code, out, err = agg(tmp_path, ".")
    assert code == cli.EXIT_UNREADABLE
    assert headings(out) == ["a.py", "z.py"]                  # the document is still written
    assert "cannot read dangling.py: No such file or directory" in err
    assert "cannot read loop1:" in err and "cannot read loop2:" in err


def _permission_bits_hold(tmp_path: Path, prefix: list[str]) -> bool:
    """Does a process started under `prefix` get EACCES on a mode-000 file?"""
    probe = tmp_path / "probe-000"
    probe.write_bytes(b"x")
    probe.chmod(0)
    try:
        p = subprocess.run([*prefix, sys.executable, "-c", "import sys; open(sys.argv[1], 'rb')", str(probe)],
                           capture_output=True, timeout=60)
        return p.returncode != 0 and b"PermissionError" in p.stderr
    except OSError:
        return False
    finally:
        probe.chmod(0o644)
        probe.unlink()


@pytest.fixture
def unprivileged(tmp_path):
    """A command prefix under which file permission bits are enforced, or None.

    Not root: no prefix. Root (as in CI) reads mode-000 files through
    CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH, so the command runs with those two
    capabilities dropped from its bounding set (util-linux `setpriv`); it is
    still root and owns the test files, but mode 000 now denies it. None when
    no such prefix works here: the tests then make the open fail in-process."""
    if not IS_ROOT:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv:
        prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search"]
        if _permission_bits_hold(tmp_path, prefix):
            return prefix
    return None


def _fake_eacces(monkeypatch, names: set[str]) -> None:
    """In-process stand-in for mode 000 (used only when no unprivileged run is possible):
    os.open and os.scandir in the walker raise EACCES for these base names."""
    import slopfast.walk as walk_module

    def guarded(fn):
        def call(path, *args, **kwargs):
            if os.path.basename(os.fspath(path)) in names:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
            return fn(path, *args, **kwargs)
        return call

    monkeypatch.setattr(walk_module.os, "open", guarded(os.open))
    monkeypatch.setattr(walk_module.os, "scandir", guarded(os.scandir))


def _unreadable_tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    write(root, {"a.py": "a\n", "locked.py": "secret\n", "shut/b.py": "b\n", "z.md": "# z\n"})
    return root


@pytest.mark.parametrize("backend", ["native", "fallback"])
def test_unreadable_file_and_directory(tmp_path, unprivileged, monkeypatch, backend, agg):
    if backend == "native":
        require_native()
    root = _unreadable_tree(tmp_path)
    if unprivileged is None:
        _fake_eacces(monkeypatch, {"locked.py", "shut"})
        monkeypatch.setenv("SLOPFAST_BACKEND", backend)
        code, out, err = agg(root, ".")
    else:
        (root / "locked.py").chmod(0)
        (root / "shut").chmod(0)
        try:
            p = subprocess.run([*unprivileged, sys.executable, "-m", "slopfast", "aggregate", "."],
                               cwd=root, env=subprocess_env(SLOPFAST_BACKEND=backend),
                               capture_output=True, timeout=120)
        finally:
            (root / "locked.py").chmod(0o644)
            (root / "shut").chmod(0o755)
        code, out, err = p.returncode, p.stdout, p.stderr.decode()
    assert code == cli.EXIT_UNREADABLE, err
    assert headings(out) == ["a.py", "z.md"]                 # the rest is still written
    assert b"secret" not in out
    assert "cannot read locked.py: Permission denied" in err
    assert "cannot read shut: Permission denied" in err


def test_unreadable_file_seen_by_the_reader_itself(tmp_path, unprivileged):
    """A file the walk never vetted (an explicit build item): the reader of each
    backend (C open() on the native path) reports EACCES for it."""
    if unprivileged is None:
        pytest.skip("needs a process for which mode 000 denies reading (see the `unprivileged` fixture)")
    root = _unreadable_tree(tmp_path)
    (root / "locked.py").chmod(0)
    script = ("import slopfast.aggregate as a; r = a.build(['a.py', 'locked.py', 'z.md']); "
              "print(r.document.count(b'### '), [(p, e.errno, type(e).__name__) for p, e in r.skipped])")
    backends = ["fallback"] + (["native"] if native.available() else [])
    try:
        for backend in backends:
            p = subprocess.run([*unprivileged, sys.executable, "-c", script], cwd=root,
                               env=subprocess_env(SLOPFAST_BACKEND=backend), capture_output=True, timeout=120)
            assert p.returncode == 0, p.stderr
            assert p.stdout.decode().strip() == f"2 [('locked.py', {errno.EACCES}, 'InputError')]", backend
    finally:
        (root / "locked.py").chmod(0o644)


def test_unreadable_at_build_time_is_reported_from_build_result(tmp_path, agg, monkeypatch):
    # A file that vanishes (or is a directory by now) between the walk and the read:
    # the reader (native or fallback) reports it in BuildResult.skipped.
    write(tmp_path, {"a.py": "a\n"})
    (tmp_path / "gone.py").mkdir()

    def fake_walk(paths, options):
        yield Found("a.py", "a.py", 2)
        yield Found("gone.py", "gone.py", 0)      # a directory named like a file
        yield Found("vanished.py", "vanished.py", 1)

    monkeypatch.setattr(cli, "walk", fake_walk)
    code, out, err = agg(tmp_path, ".")
    assert code == cli.EXIT_UNREADABLE
    assert headings(out) == ["a.py"]
    assert "cannot read gone.py:" in err
    assert "cannot read vanished.py: No such file or directory" in err


def test_special_files_are_skipped_not_opened(tmp_path, agg):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    write(tmp_path, {"a.py": "a\n"})
    os.mkfifo(tmp_path / "pipe")
    code, out, err = agg(tmp_path, ".", "-v")   # would block forever if the FIFO were read
    assert code == 0 and headings(out) == ["a.py"]
    assert "skipped pipe: not a regular file" in err


# ---- modes ----------------------------------------------------------------------------

CORE_PY = '''"""Core module."""
import os
from typing import Any

LIMIT = 10


class Engine:
    """Runs things."""

    def start(self, n: int) -> int:
        total = 0
        for i in range(n):
            total += i
        return total


def helper(a, b=2):
    return a * b
'''

README_MD = """# Project

Some text.

Install
-------

```sh
# not a heading
pip install project
```

## Use

### Details
"""

TIER_TREE = {
    "README.md": README_MD,
    "docs/guide.md": "# Guide\n\n" + "".join(f"para {i}\n\n" for i in range(30)) + "## End\n",
    "docs/CHANGES.MD": "Changes\n=======\n\n- one\n",           # suffix case ignored: markdown
    "docs/plain.md": "".join(f"no heading, line {i}\n" for i in range(25)),  # generic summary
    "pkg/__init__.py": '"""The package."""\nfrom .core import Engine\n',
    "pkg/core.py": CORE_PY,
    "pkg/stub.pyi": "def helper(a: int, b: int = ...) -> int: ...\n",
    "pkg/broken.py": "s = \"unterminated\n" + "x = 1\n" * 30,   # neither path can skeleton it
    "notes.txt": "".join(f"note {i}\n" for i in range(40)),
    "data.json": '{"a": 1}\n',
}


def _sections(document: bytes) -> dict[str, bytes]:
    """heading path -> the fenced body (between the fence lines) of each section."""
    out = {}
    for section in document.rstrip(b"\n").split(b"\n\n---\n\n"):
        head, _, rest = section.partition(b"\n\n")
        path = HEADING.match(head).group(1).decode()
        fence_line, _, body = rest.partition(b"\n")
        fence = fence_line[: len(fence_line) - len(fence_line.lstrip(b"`"))]
        assert body.endswith(b"\n" + fence)
        out[path] = body[: -len(fence) - 1]
    return out


@pytest.fixture(scope="module")
def tier_tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiers")
    write(root, TIER_TREE)
    return root


def _generic(text: str) -> bytes:
    lines = text.encode().splitlines(keepends=True)
    more = len(lines) - 20
    return b"".join(lines[:20]) + (f"... {more} more line{'s' * (more != 1)}".encode() if more > 0 else b"")


TIER_CASES = {
    "full": ["--mode", "full"],
    "summary": ["--mode", "summary"],
    "skeleton": ["--mode", "skeleton"],
    "summary+full": ["--mode", "summary", "--full", "pkg/core.py", "--full", "docs/*.md"],
    "skeleton+full": ["--mode", "skeleton", "--full", "*.pyi", "--full", "broken.py"],
}


@pytest.fixture(scope="module")
def tier_outputs(tier_tree):
    """{(case, backend): stdout} of `slopfast aggregate .` on the tier tree, in fresh processes."""
    outputs = {}
    backends = ["fallback"] + (["native"] if native.available() else [])
    for case, args in TIER_CASES.items():
        for backend in backends:
            p = run("aggregate", ".", "-q", *args, cwd=tier_tree, SLOPFAST_BACKEND=backend, SLOPFAST_WISDOM="off")
            assert p.returncode == 0 and p.stderr == b"", (case, backend, p.stderr)
            outputs[case, backend] = p.stdout
    return outputs


@pytest.mark.parametrize("case", list(TIER_CASES))
def test_tiers_native_and_fallback_byte_identical(case, tier_outputs, needs_native):
    assert tier_outputs[case, "native"] == tier_outputs[case, "fallback"]


@pytest.mark.parametrize("case", list(TIER_CASES))
def test_tiers_match_the_library_per_file(case, tier_outputs):
    """Each section is what the library's own summarisers give for that file and mode."""
    summarise_markdown = slopfast.summarise_markdown
    summarise_python = slopfast.summarise_python

    args = TIER_CASES[case]
    mode = args[1]
    full_globs = args[3::2]
    from slopfast.walk import compile_patterns
    full = compile_patterns(full_globs)
    sections = _sections(tier_outputs[case, "fallback"])
    assert list(sections) == sorted(TIER_TREE, key=str.encode)
    for path, text in TIER_TREE.items():
        effective = "full" if full is not None and full.match_file(path) else mode
        kind = path.rsplit(".", 1)[-1].lower()
        if effective == "full" or kind not in ("py", "pyi", "md") and effective == "skeleton":
            expected = text.encode()
        elif kind in ("py", "pyi"):
            expected = _generic(text) if path == "pkg/broken.py" else summarise_python(text).encode()
        elif kind == "md" and effective == "summary":
            outline = summarise_markdown(text)
            expected = outline.encode() if outline else _generic(text)
        elif kind == "md":
            expected = text.encode()
        else:
            expected = _generic(text)
        assert sections[path] == expected, (case, path)


def test_tiers_show_the_expected_shapes(tier_outputs):
    """Spot checks that do not go through the library: outline, skeleton, tiers."""
    summary = _sections(tier_outputs["summary", "fallback"])
    assert summary["README.md"] == b"- Project\n  - Install\n  - Use\n    - Details\n"
    assert summary["docs/CHANGES.MD"] == b"- Changes\n"
    assert summary["docs/plain.md"].endswith(b"no heading, line 19\n... 5 more lines")
    assert summary["notes.txt"].endswith(b"note 19\n... 20 more lines")
    assert summary["data.json"] == b'{"a": 1}\n'
    assert b"    def start(self, n: int) -> int:\n        ...\n" in summary["pkg/core.py"]
    assert b"total" not in summary["pkg/core.py"]
    skeleton = _sections(tier_outputs["skeleton", "fallback"])
    assert skeleton["README.md"] == README_MD.encode()          # markdown is kept in skeleton mode
    assert skeleton["pkg/core.py"] == summary["pkg/core.py"]
    assert skeleton["notes.txt"] == TIER_TREE["notes.txt"].encode()
    tiers = _sections(tier_outputs["summary+full", "fallback"])
    assert tiers["pkg/core.py"] == CORE_PY.encode()
    assert tiers["docs/guide.md"] == TIER_TREE["docs/guide.md"].encode()
    assert tiers["docs/plain.md"] == TIER_TREE["docs/plain.md"].encode()
    assert tiers["docs/CHANGES.MD"] == b"- Changes\n"       # *.md is case-sensitive as a glob
    assert tiers["README.md"] == summary["README.md"]         # docs/*.md is anchored to docs/
    assert tiers["pkg/__init__.py"] == summary["pkg/__init__.py"]
    sk_tiers = _sections(tier_outputs["skeleton+full", "fallback"])
    assert sk_tiers["pkg/stub.pyi"] == TIER_TREE["pkg/stub.pyi"].encode()
    assert sk_tiers["pkg/broken.py"] == TIER_TREE["pkg/broken.py"].encode()   # unanchored: any depth
    assert sk_tiers["pkg/core.py"] == skeleton["pkg/core.py"]


def test_full_glob_is_relative_to_the_path_argument(tier_tree, agg):
    code, out, _ = agg(tier_tree.parent, tier_tree.name, "--mode", "summary", "--full", "pkg/core.py")
    sections = _sections(out)
    assert sections[f"{tier_tree.name}/pkg/core.py"] == CORE_PY.encode()


def test_native_path_reads_files_in_c(tier_tree, agg, monkeypatch, needs_native):
    """On the native path the CLI hands over paths only (Input.data None): C reads the files."""
    seen = []
    real_run = native.run

    def spy(ops, inputs, *args, **kwargs):
        if ops[0][0] == AGGREGATE_OP:    # (not the walk op's directory)
            seen.extend(inputs)
        return real_run(ops, inputs, *args, **kwargs)

    monkeypatch.setattr(native, "run", spy)
    monkeypatch.setenv("SLOPFAST_BACKEND", "native")
    code, out, _ = agg(tier_tree, ".", "--mode", "summary", "--full", "*.md")
    assert code == 0 and len(headings(out)) == len(TIER_TREE)
    assert len(seen) == len(TIER_TREE)
    assert all(i.data is None for i in seen)
    modes = {i.path.decode(): i.mode for i in seen}
    from slopfast import wire
    assert modes["README.md"] == wire.MODE_FULL and modes["pkg/core.py"] == wire.MODE_DEFAULT


# ---- output, exit codes, backends --------------------------------------------------------

def test_output_file_is_written_and_never_read_back(tmp_path, agg):
    write(tmp_path, {"a.py": "a\n"})
    code, out, _ = agg(tmp_path, ".", "-o", "context.md")
    assert code == 0 and out == b""
    first = (tmp_path / "context.md").read_bytes()
    assert headings(first) == ["a.py"]
    code, _, _ = agg(tmp_path, ".", "-o", "context.md")      # exists now, inside the tree
    assert (tmp_path / "context.md").read_bytes() == first
    code, out, _ = agg(tmp_path, ".", "-o", "-")           # to stdout, context.md is just a file
    assert headings(out) == ["a.py", "context.md", "a.py"]  # (the last one inside context.md's fence)


def test_reader_that_goes_away_is_not_an_error(tmp_path):
    """`slopfast aggregate . | head -c 100`: a closed pipe ends the run quietly."""
    write(tmp_path, {f"f{i}.txt": "x" * 1000 + "\n" for i in range(500)})   # far more than a pipe holds
    proc = subprocess.Popen([sys.executable, "-m", "slopfast", "aggregate", "."], cwd=tmp_path,
                            env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.read(100).startswith(b"### `f0.txt`")
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 0
    assert err == b""


def test_output_ends_with_one_newline(tmp_path, agg):
    write(tmp_path, {"a.py": "a"})
    assert agg(tmp_path, ".")[1] == b"### `a.py`\n\n```py\na\n```\n"


def test_usage_errors_exit_2(tmp_path, agg):
    code, out, err = agg(tmp_path, "does-not-exist")
    assert code == cli.EXIT_USAGE and out == b"" and "does-not-exist: no such file or directory" in err
    assert cli.main(["aggregate"]) == cli.EXIT_USAGE
    assert cli.main(["aggregate", ".", "--mode", "everything"]) == cli.EXIT_USAGE
    assert cli.main(["aggregate", ".", "--max-file-size", "lots"]) == cli.EXIT_USAGE
    assert cli.main([]) == cli.EXIT_USAGE
    assert cli.main(["frobnicate"]) == cli.EXIT_USAGE


def test_output_in_a_missing_directory_is_a_usage_error(tmp_path, agg, monkeypatch):
    # exit 2 before any work (it was exit 3 after the walk and the build)
    write(tmp_path, {"a.py": "a\n"})
    monkeypatch.setattr(cli, "walk", lambda *a: pytest.fail("walked before checking -o"))
    missing = tmp_path / "no" / "such" / "dir" / "out.md"
    code, out, err = agg(tmp_path, ".", "-o", str(missing))
    assert (code, out) == (cli.EXIT_USAGE, b"") and f"no such directory {missing.parent}" in err
    code, _, err = agg(tmp_path, ".", "-o", str(tmp_path))
    assert code == cli.EXIT_USAGE and "is a directory" in err


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_unwritable_output_is_fatal(tmp_path, agg):
    write(tmp_path, {"a.py": "a\n"})
    code, _, err = agg(tmp_path, ".", "-o", "/dev/full")     # ENOSPC on write
    assert code == cli.EXIT_FATAL and "error:" in err


def test_verbose_summary_names_the_backend(tmp_path, agg, monkeypatch):
    write(tmp_path, {"a.py": "a\n", "b.py": "b\n"})
    monkeypatch.setenv("SLOPFAST_BACKEND", "fallback")
    code, _, err = agg(tmp_path, ".", "-v")
    assert code == 0
    assert re.search(r"2 files, 4 B in, \d+ B out, [\d.]+ s; 0 skipped, 0 unreadable; "
                     rf"backend fallback \({AGGREGATE_OP}\); walk Python$", err.strip())


def test_verbose_summary_forced_native_and_calibrating(tmp_path, agg, monkeypatch, needs_native):
    write(tmp_path, {"a.py": "a\n", "b.py": "b\n"})
    monkeypatch.setenv("SLOPFAST_BACKEND", "native")
    code, _, err = agg(tmp_path, ".", "-v")
    assert code == 0 and err.strip().endswith(f"; backend native ({AGGREGATE_OP}); walk native"), err
    monkeypatch.delenv("SLOPFAST_BACKEND")
    dispatch.reset()   # auto, no decision yet (SLOPFAST_WISDOM=off): this run measures both paths
    code, _, err = agg(tmp_path, ".", "-v")
    assert code == 0
    # both paths ran on the (whole, tiny) input to calibrate, the caller's answer came from native
    assert re.search(rf"; backend (native|fallback) \({AGGREGATE_OP}(; both ran to calibrate)?\); walk native$",
                     err.strip()), err
    assert [r for r in dispatch.backend_report() if r["op"] == AGGREGATE_OP and r["why"] == "measured"]
    code, _, err = agg(tmp_path, ".", "-v")    # decided now: one path
    assert re.search(rf"; backend (native|fallback) \({AGGREGATE_OP}\); walk native$", err.strip()), err


def test_verbose_summary_names_the_walk(tmp_path, agg, monkeypatch, needs_native):
    """-v says which walk listed the directory arguments: a nested repository
    is left to the Python walk, --follow-symlinks is walked in Python, a file
    argument is no walk."""
    write(tmp_path, {"top/a.py": "a\n", "top/inner/b.py": "b\n", "plain/c.py": "c\n"})
    subprocess.run(["git", "init", "-q", str(tmp_path / "top")], check=True)
    subprocess.run(["git", "init", "-q", str(tmp_path / "top" / "inner")], check=True)
    cases = [(("plain",), "; walk native"), (("plain", "--follow-symlinks"), "; walk Python"),
             (("plain", "top"), "; walk native (1 of 2 directories), Python (the rest)"),
             (("plain/c.py",), f"; backend native ({AGGREGATE_OP})")]
    monkeypatch.setenv("SLOPFAST_BACKEND", "native")
    for args, end in cases:
        code, _, err = agg(tmp_path, *args, "-v")
        assert code == 0 and err.strip().endswith(end), (args, err)


def test_subprocess_native_and_fallback_give_identical_bytes(needs_native, tmp_path):
    tree = tmp_path / "tree"
    shutil.copytree(DATA / "rust-book" / "2018-edition", tree / "book")
    write(tree, {"code/a.py": "def f():\n    return 1\n" * 50, "odd `name`.md": "```\nfence\n```\n",
                 "ünï/ç.txt": "x\n", "bin.dat": b"\0\1", ".gitignore": "*.toml\n"})
    outputs = {}
    for backend in ("native", "fallback"):
        for mode in ("full", "summary"):
            p = run("aggregate", ".", "--mode", mode, "--full", "*.py", cwd=tree, SLOPFAST_BACKEND=backend)
            assert p.returncode == 0, p.stderr
            assert b"skipped 1 binary file (-v lists it)" in p.stderr
            outputs[backend, mode] = p.stdout
    assert outputs["native", "full"] == outputs["fallback", "full"]
    assert outputs["native", "summary"] == outputs["fallback", "summary"]
    assert len(headings(outputs["native", "full"])) > 50
    assert not any(h.endswith(".toml") for h in headings(outputs["native", "full"]))


def test_subprocess_same_as_in_process(tmp_path, agg):
    write(tmp_path, {"a.py": "a\n", "d/b.md": "# b\n"})
    p = run("aggregate", ".", cwd=tmp_path)
    code, out, _ = agg(tmp_path, ".")
    assert p.returncode == code == 0 and p.stdout == out


def test_forced_native_that_cannot_load_is_fatal(tmp_path):
    write(tmp_path, {"a.py": "a\n"})
    env = {"SLOPFAST_BACKEND": "native", "SLOPFAST_LIB": str(tmp_path / "missing.so")}
    p = run("aggregate", ".", cwd=tmp_path, **env)
    assert p.returncode == cli.EXIT_FATAL
    assert b"SLOPFAST_BACKEND=native" in p.stderr and b"missing.so" in p.stderr
    assert p.stdout == b""
    d = run("doctor", cwd=tmp_path, **env)
    assert d.returncode == cli.EXIT_FATAL
    assert b"missing.so" in d.stdout + d.stderr
    # auto with the same broken library falls back and succeeds
    p = run("aggregate", ".", cwd=tmp_path, SLOPFAST_LIB=str(tmp_path / "missing.so"))
    assert p.returncode == 0 and headings(p.stdout) == ["a.py"]


def test_bad_backend_setting_is_fatal(tmp_path):
    write(tmp_path, {"a.py": "a\n"})
    p = run("aggregate", ".", cwd=tmp_path, SLOPFAST_BACKEND="turbo")
    assert p.returncode == cli.EXIT_FATAL and b"turbo" in p.stderr


def test_subprocess_unreadable_exit_code_and_output(tmp_path):
    write(tmp_path, {"a.py": "a\n"})
    os.symlink("nowhere", tmp_path / "dangling.txt")
    p = run("aggregate", ".", cwd=tmp_path)
    assert p.returncode == 1
    assert headings(p.stdout) == ["a.py"]
    assert b"cannot read dangling.txt" in p.stderr


def test_console_script_is_the_same_command(tmp_path):
    """The installed `slopfast` script runs slopfast.cli:main, as `python -m slopfast` does."""
    from importlib.metadata import entry_points

    [ep] = [ep for ep in entry_points(group="console_scripts") if ep.name == "slopfast"]
    assert ep.value == "slopfast.cli:main" and ep.load() is cli.main
    write(tmp_path, {"a.py": "a\n", "b/c.md": "# c\n", "bin.dat": b"\0"})
    os.symlink("nowhere", tmp_path / "dangling.txt")
    script = Path(sys.executable).with_name("slopfast")
    assert script.exists(), f"no console script next to {sys.executable} (is the package installed?)"
    cases = {("aggregate", ".", "-v"): 1, ("aggregate", "nope"): 2, ("aggregate", "b", "--mode", "summary"): 0,
             ("doctor",): 0}
    for args, expected in cases.items():
        a = subprocess.run([str(script), *args], cwd=tmp_path, env=subprocess_env(), capture_output=True, timeout=120)
        b = run(*args, cwd=tmp_path)
        # the interpreter's path may differ: bin/python3 in the script's #! line
        same_python = lambda out: re.sub(rb"(?m)^(python: .*\()[^)]*\)", rb"\1PYTHON)", out)  # noqa: E731
        assert a.returncode == b.returncode == expected and same_python(a.stdout) == same_python(b.stdout)
        # the stderr lines agree but for timings (and for the winner of a calibration, by a hair)
        def same_run(err: bytes) -> bytes:
            err = re.sub(rb"[\d.]+ s", b"T", err)
            return re.sub(rb"backend \w+ (\(\w+; both ran to calibrate\))", rb"backend WINNER \1", err)
        assert same_run(a.stderr) == same_run(b.stderr)


def test_report_to_a_closed_pipe_ends_quietly():
    proc = subprocess.run(f"{shlex.quote(sys.executable)} -m slopfast doctor | head -c 10", shell=True,
                          env=subprocess_env(), capture_output=True, timeout=120)
    assert proc.returncode == 0 and len(proc.stdout) == 10 and b"error" not in proc.stderr


def test_version_and_help():
    p = run("--version", cwd=Path.cwd())
    assert p.returncode == 0 and p.stdout.startswith(b"slopfast ")
    p = run("aggregate", "--help", cwd=Path.cwd())
    assert p.returncode == 0 and b"exit codes" in p.stdout


# ---- progress ---------------------------------------------------------------------------

class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_only_on_a_terminal_and_only_when_long():
    clock = iter([0.0, 0.1, 0.2, 1.0, 1.05, 1.3, 1.4]).__next__
    stream = _Tty()
    p = cli.Progress(stream, clock=clock)
    p.update("a")       # 0.1: too early
    p.update("b")       # 0.2: too early
    p.update("c")       # 1.0: shown
    p.update("d")       # 1.05: throttled
    p.update("e")       # 1.3: shown
    p.clear()
    assert stream.getvalue() == "\r\x1b[Kc\r\x1b[Ke\r\x1b[K"
    quiet = io.StringIO()
    p = cli.Progress(quiet, clock=iter([0.0, 5.0]).__next__)
    p.update("x")
    assert quiet.getvalue() == ""


def _run_on_a_pty(args: list[str], cwd: Path, code: str = "") -> tuple[int, bytes, bytes]:
    """Run `slopfast ARGS` (after `code`, in a fresh Python) with stderr on a pseudo-terminal:
    (exit code, stdout, everything written to the terminal)."""
    import pty
    import select
    master, slave = pty.openpty()
    script = "\n".join(["import sys", "from slopfast import cli", code,
                        "raise SystemExit(cli.main(sys.argv[1:]))"])
    try:
        proc = subprocess.Popen([sys.executable, "-c", script, *args], cwd=cwd, env=subprocess_env(),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave)
    finally:
        os.close(slave)
    chunks = []
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 60)
            if not ready:
                break
            try:
                data = os.read(master, 65536)
            except OSError:   # EIO: the child closed its side
                break
            if not data:
                break
            chunks.append(data)
        out = proc.stdout.read()
        code_ = proc.wait(timeout=60)
    finally:
        os.close(master)
        proc.stdout.close()
    return code_, out, b"".join(chunks).replace(b"\r\n", b"\n")   # the tty's ONLCR


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_progress_on_a_real_terminal(tmp_path):
    write(tmp_path, {f"d{i:02}/f{j:02}.txt": "x\n" for i in range(10) for j in range(10)})
    write(tmp_path, {"d05/img.bin": b"\0\1\2"})
    plain = run("aggregate", ".", cwd=tmp_path)
    # A long run, as the delay before the progress line makes every run here long.
    fast = "cli.PROGRESS_DELAY = 0; cli.PROGRESS_INTERVAL = 0"
    code, out, tty = _run_on_a_pty(["aggregate", "."], tmp_path, fast)
    assert code == 0 and out == plain.stdout
    assert tty.startswith(b"\r\x1b[Kslopfast: 1 file, 2 B")
    assert b"\r\x1b[Kslopfast: 100 files, 200 B" in tty
    # the progress line is gone before the summary
    assert tty.endswith(b"\r\x1b[K" + plain.stderr) and b"\x1b" not in plain.stderr
    wrote = cli.human_bytes(len(plain.stdout)).encode()
    assert plain.stderr == (b"slopfast: included 100 files, 200 B; wrote " + wrote + b" to stdout\n"
                            b"slopfast: skipped 1 binary file (-v lists it)\n")
    # with -v, the skip note gets a line of its own (the progress line is cleared first)
    code, out, tty = _run_on_a_pty(["aggregate", ".", "-v"], tmp_path, fast)
    assert re.search(rb"\r\x1b\[Kslopfast: skipped d05/img.bin: binary file \(NUL byte in the first 8 KiB\)\n"
                     rb"\r\x1b\[Kslopfast: \d+ files", tty)
    # A short run (the default delay) shows no progress on a terminal either.
    code, out, tty = _run_on_a_pty(["aggregate", "."], tmp_path)
    assert code == 0 and out == plain.stdout
    assert tty == plain.stderr


def test_no_progress_noise_when_stderr_is_not_a_terminal(tmp_path):
    write(tmp_path, {f"d{i}/f{j}.txt": "x\n" for i in range(20) for j in range(20)})
    p = run("aggregate", ".", cwd=tmp_path)
    wrote = cli.human_bytes(len(p.stdout)).encode()
    assert p.returncode == 0 and p.stderr == b"slopfast: included 400 files, 800 B; wrote " + wrote + b" to stdout\n"
    assert run("aggregate", ".", "-q", cwd=tmp_path).stderr == b""


# ---- file lists from stdin (- / --stdin, -0) -------------------------------------------------

def run_in(stdin: bytes, *args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "slopfast", *args], input=stdin, cwd=cwd,
                          env=subprocess_env(**env), capture_output=True, timeout=120)


@pytest.fixture
def agg_in(capsysbinary, monkeypatch):
    """In-process `slopfast aggregate ARGS` with `stdin` as its standard input."""

    def call(cwd: Path, stdin: bytes, *args: str):
        monkeypatch.chdir(cwd)
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
        code = cli.main(["aggregate", *args])
        out, err = capsysbinary.readouterr()
        return code, out, err.decode("utf-8", "replace")

    return call


LIST_TREE = {".gitignore": "*.log\nignored/\n", "a.py": "a\n", "b.md": "# b\n", "app.log": "log\n",
             "ignored/x.py": "x\n", ".env": "E=1\n", "sub/c.txt": "c\n", "bin.dat": b"\0\1"}


@pytest.mark.parametrize("backend", ["native", "fallback"])
def test_list_on_stdin_keeps_its_order_and_skips_no_ignore_rule(tmp_path, backend, agg_in, monkeypatch):
    if backend == "native":
        require_native()
    monkeypatch.setenv("SLOPFAST_BACKEND", backend)
    write(tmp_path, LIST_TREE)
    listing = b"sub/c.txt\napp.log\r\n\n\nignored/x.py\n.env\na.py\n./a.py\nbin.dat\nb.md"   # no final newline
    code, out, err = agg_in(tmp_path, listing, "-")
    assert code == 0, err
    # the given order, the ignore rules and hidden names not applied, a duplicate once, the binary skipped
    assert headings(out) == ["sub/c.txt", "app.log", "ignored/x.py", ".env", "a.py", "b.md"]
    assert err == ("slopfast: included 6 files, 18 B; wrote " + cli.human_bytes(len(out)) + " to stdout\n"
                   "slopfast: skipped 1 binary file (-v lists it)\n")
    # the same as naming them on the command line
    code2, out2, _ = agg_in(tmp_path, b"", "sub/c.txt", "app.log", "ignored/x.py", ".env", "a.py", "b.md")
    assert (code2, out2) == (0, out)


def test_list_nul_separated_takes_any_name(tmp_path, agg_in):
    names = ["a b.txt", " lead.txt", "trail.txt ", "x\r"] + ([] if sys.platform == "win32" else ["new\nline.txt"])
    write(tmp_path, {n: n + "\n" for n in names})
    code, out, err = agg_in(tmp_path, b"\0".join(os.fsencode(n) for n in names) + b"\0\0", "-0", "--stdin")
    assert code == 0, err
    assert out.count(b"### `") == len(names)
    for n in names:
        assert (n + "\n").encode() in out
    # newline-separated, the same names but the one with a line end; a CR ends a line
    code, out, err = agg_in(tmp_path, b"a b.txt\n lead.txt\ntrail.txt \nx\r\n", "-")
    assert headings(out) == ["a b.txt", " lead.txt", "trail.txt "] and "cannot read x: No such file" in err


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="needs a file system that takes any bytes as a name")
def test_list_non_utf8_names_round_trip(tmp_path):
    (tmp_path / os.fsdecode(b"caf\xe9.txt")).write_text("latin-1 name\n")
    p = run_in(b"caf\xe9.txt\n", "aggregate", "-", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert HEADING.findall(p.stdout) == [b"caf\\xe9.txt"] and b"latin-1 name\n" in p.stdout   # shown as \xNN


def test_list_directories_missing_files_and_the_checks(tmp_path, agg_in):
    write(tmp_path, {"a.py": "a\n", "d/in.py": "in\n", "big.txt": "x" * 5000, "outside/secret.txt": "S\n"})
    os.symlink(tmp_path / "outside" / "secret.txt", tmp_path / "d" / "link.txt")
    listing = b"d\nmissing.py\na.py\nbig.txt\nd/link.txt\n"
    code, out, err = agg_in(tmp_path, listing, "-", "--max-file-size", "4K")
    assert code == cli.EXIT_UNREADABLE            # a missing file is unreadable, not a usage error
    assert headings(out) == ["a.py"] and b"S\n" not in out
    assert "cannot read missing.py: No such file or directory" in err     # errors: always shown
    assert "skipped 1 directory in the file list (a list's directories are not walked: name them as PATHs; " \
           "-v lists it)" in err
    assert "skipped 1 file over --max-file-size 4K" in err
    assert "skipped 1 symlink to a file outside the tree walked (--follow-symlinks follows them; -v lists it)" in err
    assert "could not read 1 file or directory (the error above)" in err
    code, _, err = agg_in(tmp_path, listing, "-", "-v")
    assert "skipped d: a directory in the file list (not walked: name it as a PATH to walk it)" in err
    # errors stay with -q; nothing else
    code, _, err = agg_in(tmp_path, listing, "-", "-q")
    assert err == "slopfast: cannot read missing.py: No such file or directory\n"


def test_list_among_paths_and_after_them(tmp_path, agg_in):
    write(tmp_path, {"a.py": "a\n", "b.py": "b\n", "d/c.py": "c\n", "e.py": "e\n"})
    assert headings(agg_in(tmp_path, b"e.py\nb.py\n", "a.py", "-", "d")[1]) == ["a.py", "e.py", "b.py", "d/c.py"]
    assert headings(agg_in(tmp_path, b"e.py\nb.py\n", "a.py", "d", "--stdin")[1]) == ["a.py", "d/c.py", "e.py", "b.py"]
    # options may stand between the PATHs
    assert headings(agg_in(tmp_path, b"e.py\n", "a.py", "--stdin", "d", "-q")[1]) == ["a.py", "d/c.py", "e.py"]
    assert headings(agg_in(tmp_path, b"", "a.py", "--mode", "summary", "d")[1]) == ["a.py", "d/c.py"]
    assert headings(agg_in(tmp_path, b"", "--", "a.py", "d")[1]) == ["a.py", "d/c.py"]
    # a path from the list met again in a directory walked later is written once
    assert headings(agg_in(tmp_path, b"d/c.py\n", "-", "d")[1]) == ["d/c.py"]


def test_list_usage_errors(tmp_path, agg_in):
    write(tmp_path, {"a.py": "a\n", "list.txt": "a.py\n"})
    for args, message in [(("-", "-"), "read from stdin once"), (("-", "--stdin"), "read from stdin once"),
                          (("-0", "."), "-0 reads the file list NUL-separated: give - or --stdin too"),
                          ((), "no PATH given")]:
        code, out, err = agg_in(tmp_path, b"a.py\n", *args)
        assert (code, out) == (cli.EXIT_USAGE, b"") and message in err, (args, err)


def test_list_cannot_also_be_the_output(tmp_path):
    write(tmp_path, {"a.py": "a\n", "list.txt": "a.py\n"})
    with open(tmp_path / "list.txt", "rb") as stdin:
        p = subprocess.run([sys.executable, "-m", "slopfast", "aggregate", "-", "-o", "list.txt"], stdin=stdin,
                           cwd=tmp_path, env=subprocess_env(), capture_output=True, timeout=120)
    assert p.returncode == cli.EXIT_USAGE and b"is the file list read from stdin" in p.stderr
    assert (tmp_path / "list.txt").read_text() == "a.py\n"          # not emptied
    with open(tmp_path / "list.txt", "rb") as stdin:                # stdout, and another file: fine
        p = subprocess.run([sys.executable, "-m", "slopfast", "aggregate", "-", "-o", "ctx.md"], stdin=stdin,
                           cwd=tmp_path, env=subprocess_env(), capture_output=True, timeout=120)
    assert p.returncode == 0 and headings((tmp_path / "ctx.md").read_bytes()) == ["a.py"]
    # the output named in the list is left out, silently
    p = run_in(b"ctx.md\na.py\n", "aggregate", "-", "-o", "ctx.md", cwd=tmp_path)
    assert p.returncode == 0 and headings((tmp_path / "ctx.md").read_bytes()) == ["a.py"]
    assert b"skipped" not in p.stderr


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_git_ls_files_z_into_the_command_native_and_fallback(tmp_path, needs_native):
    write(tmp_path, {".gitignore": "*.log\n", "a.py": "a\n", "x.log": "x\n", "d/b.md": "# b\n",
                     "d/name with space.txt": "s\n"})
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(git + ["init", "-q", str(tmp_path)], check=True)
    subprocess.run(git + ["add", "."], cwd=tmp_path, check=True)
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=tmp_path, capture_output=True, check=True).stdout
    outputs = set()
    for backend in ("native", "fallback"):
        p = run_in(listed, "aggregate", "-0", "--stdin", cwd=tmp_path, SLOPFAST_BACKEND=backend)
        assert p.returncode == 0, p.stderr
        outputs.add(p.stdout)
    walked = run("aggregate", ".", "--hidden", cwd=tmp_path)   # git lists .gitignore: a hidden name
    assert outputs == {walked.stdout}
    assert headings(walked.stdout) == [".gitignore", "a.py", "d/b.md", "d/name with space.txt"]


def test_read_list_across_chunks(monkeypatch):
    monkeypatch.setattr(cli, "LIST_CHUNK", 3)
    data = b"first.py\r\nsecond/third.txt\n\n\nlast"
    assert list(cli.read_list(io.BytesIO(data))) == ["first.py", "second/third.txt", "last"]
    assert all(type(p) is cli.Listed for p in cli.read_list(io.BytesIO(data)))
    assert list(cli.read_list(io.BytesIO(b"a\nb\0c\r\0\0"), nul=True)) == ["a\nb", "c\r"]
    assert list(cli.read_list(io.BytesIO(b""))) == []


# ---- the summary -------------------------------------------------------------------------------

def test_summary_counts_each_reason_once_and_v_lists_the_files(tmp_path, agg):
    write(tmp_path, {"a.py": "a\n", "b.py": "bb\n", "img1.png": b"\0", "img2.png": b"\0", "big.txt": "x" * 100})
    os.symlink(tmp_path, tmp_path / "up")
    code, out, err = agg(tmp_path, ".", "--max-file-size", "50")
    assert code == 0
    assert err.splitlines() == [
        f"slopfast: included 2 files, 5 B; wrote {cli.human_bytes(len(out))} to stdout",
        "slopfast: skipped 2 binary files (-v lists them)",
        "slopfast: skipped 1 file over --max-file-size 50 (--max-file-size N raises the limit; -v lists it)",
        "slopfast: skipped 1 symlink to a directory (--follow-symlinks follows them; -v lists it)",
    ]
    code, out, err = agg(tmp_path, ".", "--max-file-size", "50", "-v", "-o", "ctx.md")
    lines = err.splitlines()
    assert lines[:4] == ["slopfast: skipped big.txt: 100 bytes > --max-file-size 50",
                         "slopfast: skipped img1.png: binary file (NUL byte in the first 8 KiB)",
                         "slopfast: skipped img2.png: binary file (NUL byte in the first 8 KiB)",
                         "slopfast: skipped up: symlink to a directory (not followed)"]
    assert lines[4] == f"slopfast: included 2 files, 5 B; wrote {cli.human_bytes(os.path.getsize(tmp_path / 'ctx.md'))} to ctx.md"
    assert lines[5:8] == ["slopfast: skipped 2 binary files",
                          "slopfast: skipped 1 file over --max-file-size 50 (--max-file-size N raises the limit)",
                          "slopfast: skipped 1 symlink to a directory (--follow-symlinks follows them)"]
    assert re.match(r"slopfast: 2 files, 5 B in, \d+ B out, [\d.]+ s; 4 skipped, 0 unreadable; backend ", lines[8])
    assert len(lines) == 9
    assert agg(tmp_path, ".", "-q", "--max-file-size", "50")[2] == ""
    assert cli.main(["aggregate", ".", "-q", "-v"]) == cli.EXIT_USAGE


def test_summary_lines_and_tokens():
    t = cli.RunTotals()
    t.add(Found("a", "a", 1500))
    t.add(Skipped("x", "binary", ""))
    t.add(Skipped("o", "output", ""))                 # the output itself: not counted
    t.add(Skipped("n", "some-new-reason", ""))        # a reason this command does not know yet
    t.add(Unreadable("u", OSError(13, "Permission denied")))
    t.add(Unreadable("v", OSError(2, "No such file")))
    t.bytes_out = 2048
    assert t.lines("out.md") == ["included 1 file, 1.5 KiB; wrote 2.0 KiB to out.md",
                                 "skipped 1 binary file (-v lists it)",
                                 "skipped 1 file (some-new-reason) (-v lists it)",
                                 "could not read 2 files or directories (the errors above)"]
    t.tokens = 512                                    # once the library counts them
    assert t.lines("out.md")[0] == "included 1 file, 1.5 KiB; wrote 2.0 KiB (512 tokens) to out.md"
    t.tokens = 15_100_000
    assert t.lines("out.md")[0] == "included 1 file, 1.5 KiB; wrote 2.0 KiB (15.1M tokens) to out.md"
    assert cli.size_text(10 << 20) == "10M" and cli.size_text(4096) == "4K" and cli.size_text(5000) == "5000"


# ---- when nothing is included: the hint, the exit status; patterns that match nothing ----------

def test_nothing_included_names_the_gitignore_above(ignore_tree, agg):
    for d in ("objects", "refs"):
        (ignore_tree / ".git" / d).mkdir(parents=True)
    (ignore_tree / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    code, out, err = agg(ignore_tree, "other")
    assert (code, out) == (cli.EXIT_NOTHING, b"")
    assert err.splitlines() == [
        "slopfast: included 0 files; wrote nothing to stdout",
        "slopfast: nothing included: below other, 1 entry was left out by these rules:",
        "slopfast:   1 by .gitignore ('*.log', e.g. other/app.log): --no-gitignore takes them",
    ]
    code, out, _ = agg(ignore_tree, "other", "--no-gitignore")
    assert code == 0 and headings(out) == ["other/app.log"]
    # from elsewhere, the ignore file is named by its path
    code, _, err = agg(ignore_tree / "src", "../other")
    assert f"1 by {ignore_tree / '.gitignore'} ('*.log', e.g. ../other/app.log)" in err


def test_nothing_included_by_include_and_a_warning_per_pattern(tmp_path, agg):
    write(tmp_path, {"a.py": "a\n", "pkg/b.py": "b\n", ".hidden.py": "h\n"})
    code, out, err = agg(tmp_path, ".", "--include", "*.rs")
    assert (code, out) == (cli.EXIT_NOTHING, b"")
    assert err.splitlines()[1:] == [
        "slopfast: warning: --include '*.rs' matched nothing (it matches no path below .)",
        "slopfast: nothing included: below ., 3 entries were left out by these rules:",
        "slopfast:   2 files matched no --include '*.rs' (e.g. a.py; patterns are relative to the PATH argument)",
        "slopfast:   1 hidden (e.g. .hidden.py): --hidden takes them",
    ]
    # two patterns, one matching: a warning for the other, exit 0
    code, out, err = agg(tmp_path, ".", "--include", "*.rs", "--include", "pkg/")
    assert code == 0 and headings(out) == ["pkg/b.py"]
    assert "warning: --include '*.rs' matched nothing" in err and "pkg/" not in err and "nothing included" not in err


def test_exclude_that_excludes_nothing_is_a_warning_with_the_fix(tmp_path, agg):
    write(tmp_path, {"proj/a.py": "a\n", "proj/tests/t.py": "t\n"})
    code, out, err = agg(tmp_path / "proj", ".", "--exclude", "./tests")
    assert code == 0 and headings(out) == ["a.py", "tests/t.py"]
    assert ("slopfast: warning: --exclude './tests' matched nothing (patterns are relative to the PATH argument, "
            "without ./: try --exclude 'tests')\n") in err
    code, out, err = agg(tmp_path, "proj", "--exclude", "proj/tests")
    assert headings(out) == ["proj/a.py", "proj/tests/t.py"]
    assert "--exclude 'proj/tests' matched nothing (patterns are relative to the PATH argument proj: " \
           "try --exclude 'tests')" in err
    code, out, err = agg(tmp_path, "proj", "--exclude", "tests")      # the fix: no warning
    assert headings(out) == ["proj/a.py"] and "warning" not in err
    # everything excluded: the hint names the pattern
    code, out, err = agg(tmp_path, "proj", "--exclude", "*.py")
    assert code == cli.EXIT_NOTHING and "  2 by --exclude '*.py' (e.g. proj/a.py)" in err
    # files named on the command line: the patterns do not apply, and the warning says so
    code, out, err = agg(tmp_path, "proj/a.py", "--exclude", "*.py")
    assert headings(out) == ["proj/a.py"] and "apply below directory PATHs only" in err
    assert agg(tmp_path, "proj", "--exclude", "nothing-here", "-q")[2] == ""


def test_nothing_included_default_ignores_slopfastignore_hidden(tmp_path, agg):
    if any((p / ".git").exists() for p in tmp_path.parents):
        pytest.skip("the temp directory lies inside a git work tree")
    write(tmp_path, {"n/node_modules/x.js": "x\n", "s/.slopfastignore": "*.txt\n", "s/a.txt": "a\n",
                     "h/.env": "E\n"})
    code, _, err = agg(tmp_path, "n")
    assert code == cli.EXIT_NOTHING
    assert "  1 by the default ignores ('node_modules/', e.g. n/node_modules): --no-default-ignores takes them" in err
    code, _, err = agg(tmp_path, "s")
    assert f"  1 by {os.path.join('s', '.slopfastignore')} ('*.txt', e.g. s/a.txt): edit that file" in err
    code, _, err = agg(tmp_path, "h")
    assert "  1 hidden (e.g. h/.env): --hidden takes them" in err


def test_nothing_included_every_file_skipped_and_an_empty_list(tmp_path, agg, agg_in):
    write(tmp_path, {"img.png": b"\0"})
    code, _, err = agg(tmp_path, ".")
    assert code == cli.EXIT_NOTHING
    assert "nothing included: every file found was skipped or could not be read (see above)" in err
    code, out, err = agg_in(tmp_path, b"\n\n", "-")
    assert (code, out) == (cli.EXIT_NOTHING, b"") and "nothing included: the file list on stdin was empty" in err


def test_walk_counts_what_it_leaves_out(tmp_path, monkeypatch):
    write(tmp_path, {".gitignore": "build/\n*.log\n", "build/a/b.py": "", "build/c.py": "", "x.log": "", "y.log": "",
                     "keep.py": "", "node_modules/m.js": "", "t/u.py": ""})
    for d in ("objects", "refs"):
        (tmp_path / ".git" / d).mkdir(parents=True)
    (tmp_path / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    monkeypatch.chdir(tmp_path)
    left = LeftOut()
    found = [e.path for e in walk(["."], WalkOptions(left_out=left, exclude=["t"], include=["*.py", "*.js", "zz"]))
             if isinstance(e, Found)]
    assert found == ["keep.py", "node_modules/m.js"]       # a work tree: git's rules, not the default ignores
    counts = {k if k[0] != "git" else (k[0], k[2]): n for k, n in left.counts.items()}
    assert counts == {("hidden",): 1, ("git", b"build/"): 1, ("git", b"*.log"): 2, ("exclude", 0): 1}
    git_keys = [k for k in left.counts if k[0] == "git"]
    assert all(os.path.samefile(k[1], tmp_path / ".gitignore") for k in git_keys)
    assert left.first[git_keys[0]] in ("build", "x.log") and left.walked == 1
    assert left.include_used == {0, 1} and left.exclude_used == {0}


# ---- the document side's options (wired, passed only when set) --------------------------------

def test_document_flags_parse_and_pass_only_when_set(tmp_path, agg, monkeypatch):
    parse = lambda *a: cli.build_parser().parse_args(["aggregate", ".", *a])   # noqa: E731
    args = parse()
    assert (args.format, args.line_numbers, args.raw, args.tree) == (None, None, None, None)
    assert cli.document_keywords(args) == {}
    assert cli.document_keywords(parse("--format", "markdown")) == {}
    for fmt in cli.FORMATS:
        assert parse("--format", fmt).format == fmt
    assert cli.main(["aggregate", ".", "--format", "yaml"]) == cli.EXIT_USAGE
    args = parse("--format", "xml", "-n", "--raw", "--tree")
    assert cli.document_keywords(args) == {"format": "xml", "line_numbers": True, "raw": True, "tree": True}
    seen = []
    real = cli._aggregate.stream

    def stream(events, out, **kw):
        seen.append({k: kw[k] for k in ("format", "line_numbers", "raw", "tree") if k in kw})
        return real(events, out, **kw)

    monkeypatch.setattr(cli._aggregate, "stream", stream)
    write(tmp_path, {"a.py": "a\n"})
    code, out, _ = agg(tmp_path, ".", "--format", "json", "--line-numbers", "--tree")
    assert code == 0 and seen == [dict(format="json", line_numbers=True, tree=True)]
    import json
    assert json.loads(out)["files"][0] == {"path": "a.py", "content": "1  a\n"}


def test_document_flags_give_the_library_s_document(tmp_path, agg, backend):
    import io
    write(tmp_path, {"a.py": "x = 1\n", "b.md": "# B\n"})
    for flags, kw in ((["--format", "xml", "-n"], dict(format="xml", line_numbers=True)),
                      (["--format", "plain", "--tree"], dict(format="plain", tree=True)),
                      (["--raw"], dict(raw=True))):
        code, out, _ = agg(tmp_path, ".", *flags)
        buffer = io.BytesIO()
        slopfast.aggregate_paths(["."], buffer, **kw)       # agg ran in tmp_path, and so does this
        assert code == 0 and out == buffer.getvalue()


# ---- project defaults: [tool.slopfast] in pyproject.toml ---------------------------------------

def test_project_defaults_from_pyproject(tmp_path, agg):
    write(tmp_path, {"proj/pyproject.toml": '[project]\nname = "p"\n\n[tool.slopfast]\nexclude = ["tests/"]\n'
                                            'mode = "summary"\nmax-file-size = "1K"\n',
                     "proj/a.md": "# A\ntext\n", "proj/tests/t.py": "t\n", "proj/big.txt": "x" * 2000,
                     "proj/.git/HEAD": "ref: refs/heads/main\n", "proj/.git/objects/.keep": "",
                     "proj/.git/refs/.keep": ""})
    root = tmp_path / "proj"
    code, out, err = agg(root, ".", "-v")
    assert code == 0 and headings(out) == ["a.md", "pyproject.toml"]
    assert b"- A\n" in out                                     # mode = "summary": an outline
    assert f"defaults from {root / 'pyproject.toml'} [tool.slopfast]" in err
    assert "skipped 1 file over --max-file-size 1K" in err
    # the command line wins for one value, adds to a list
    code, out, _ = agg(root, ".", "--mode", "full", "--exclude", "*.toml", "--max-file-size", "0")
    assert headings(out) == ["a.md", "big.txt"] and b"text\n" in out
    # found from below, not above the top of the work tree; --no-config ignores it
    assert headings(agg(root / "tests", ".")[1]) == ["t.py"]     # exclude tests/ is relative to PATH: no match
    assert headings(agg(root, "tests")[1]) == ["tests/t.py"]
    assert headings(agg(root, ".", "--no-config")[1]) == ["a.md", "big.txt", "pyproject.toml", "tests/t.py"]


def test_project_defaults_cannot_widen_what_is_read(tmp_path, agg):
    write(tmp_path, {"proj/pyproject.toml": "[tool.slopfast]\nfollow-symlinks = true\nhidden = true\n"
                                            "gitignore = false\nexlude = ['x']\n",
                     "proj/a.py": "a\n", "proj/.env": "SECRET\n", "outside/s.txt": "S\n"})
    os.symlink(tmp_path / "outside" / "s.txt", tmp_path / "proj" / "link.txt")
    code, out, err = agg(tmp_path / "proj", ".")
    assert headings(out) == ["a.py", "pyproject.toml"] and b"SECRET" not in out and b"S\n" not in out
    for key in ("follow-symlinks", "hidden", "gitignore"):
        assert f"[tool.slopfast]: {key} ignored: it widens what is read, so only the command line sets it" in err
    assert "unknown key 'exlude' ignored" in err


@pytest.mark.parametrize("text, message", [
    ("[tool.slopfast]\nmode = 'all'\n", "mode must be one of full, summary, skeleton, not 'all'"),
    ("[tool.slopfast]\ninclude = '*.py'\nexclude = [1]\n", "exclude must be a list of patterns"),
    ("[tool.slopfast]\nmax-file-size = 'lots'\n", "max-file-size must be a size"),
    ("[tool.slopfast]\nline-numbers = 1\n", "line-numbers must be true or false"),
    ("[tool.slopfast\nmode = 'full'\n", "not valid TOML"),
    ("[tool.slopfast]\nexclude = ['ok/', '']\n", "pyproject.toml [tool.slopfast]: exclude '': empty pattern"),
    ("[tool.slopfast]\nfull = '[z-a'\n", "[tool.slopfast]: full '[z-a'"),
])
def test_project_defaults_bad_values_are_usage_errors(tmp_path, agg, text, message):
    write(tmp_path, {"pyproject.toml": text, "a.py": "a\n"})
    code, out, err = agg(tmp_path, ".")
    assert (code, out) == (cli.EXIT_USAGE, b"") and message in err, err
    assert agg(tmp_path, ".", "--no-config", "-q")[0] == 0


def test_project_defaults_without_tomllib(tmp_path, agg, monkeypatch):
    """Python 3.10 has no tomllib: the file is not read, with a warning (tomli is used when installed)."""
    write(tmp_path, {"pyproject.toml": "[tool.slopfast]\nexclude = ['a.py']\n", "a.py": "a\n"})
    monkeypatch.setitem(sys.modules, "tomllib", None)
    monkeypatch.setitem(sys.modules, "tomli", None)
    code, out, err = agg(tmp_path, ".")
    assert code == 0 and headings(out) == ["a.py", "pyproject.toml"]
    assert "[tool.slopfast] not read: Python" in err and "has no tomllib" in err


def test_config_costs_nothing_without_a_pyproject(tmp_path):
    write(tmp_path, {"a.py": "a\n", "b/pyproject.toml": "[project]\nname = 'b'\n"})
    code = ("import sys; from slopfast import cli; assert 'tomllib' not in sys.modules\n"
            "cli.main(['aggregate', '.', '-q']); a = 'tomllib' in sys.modules\n"
            "cli.main(['aggregate', 'b', '-q']); print(a, 'tomllib' in sys.modules)\n")
    p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path / "b" if False else tmp_path,
                       env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split("\n")[-2].endswith("False False")   # a pyproject without "slopfast": not parsed


# ---- walk (the module) ---------------------------------------------------------------------

def test_walk_events(tmp_path, monkeypatch):
    write(tmp_path, {"a.txt": "a", "bin": b"\0", "big": "x" * 100})
    monkeypatch.chdir(tmp_path)
    events = [e._replace(ident=None) if isinstance(e, Found) else e for e in walk(["."], WalkOptions(max_file_size=50))]
    assert events == [Found("a.txt", "a.txt", 1), Skipped("big", "too-large", "100 bytes > --max-file-size 50"),
                      Skipped("bin", "binary", "binary file (NUL byte in the first 8 KiB)")]
    assert isinstance(next(iter(walk([str(tmp_path / "nope")]))), Unreadable)



# ---- what `import slopfast.cli` loads ------------------------------------------------------

def test_cli_import_leaves_bench_and_doctor_unloaded():
    """`slopfast aggregate` and `--version` pay for neither subcommand's module, nor
    for the libraries the other ops need; bench and doctor load when they run."""
    code = ("import sys, slopfast.cli as c\n"
            "heavy = ['slopfast.bench', 'slopfast.doctor', 'matplotlib', 'msgspec', 'markdown_it']\n"
            "print([m for m in heavy if m in sys.modules], [n for n in ('json', 'platform') if hasattr(c, n)])\n"
            "assert c.main(['--version']) == 0\n")
    p = subprocess.run([sys.executable, "-c", code], env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[0] == "[] []"


def test_bench_and_doctor_are_dispatched_lazily(monkeypatch):
    monkeypatch.delitem(sys.modules, "slopfast.doctor", raising=False)
    calls = []

    class Fake:
        @staticmethod
        def command(args):
            calls.append(args.command)
            return 7

    monkeypatch.setitem(sys.modules, "slopfast.doctor", Fake)
    monkeypatch.setattr(slopfast, "doctor", Fake, raising=False)
    assert cli.main(["doctor"]) == 7 and calls == ["doctor"]


# ---- dispatch.observe(): the dispatcher's observation hook ----------------------------------

def test_observe_records_nothing_when_inactive():
    with dispatch.observe() as log:
        pass
    assert dispatch._observers == []
    slopfast.build_markdown([("a.py", "a\n")])
    dispatch.dispatch("t_op", 10, None, lambda: 1)
    assert log == []


@pytest.mark.parametrize("backend", ["native", "fallback"])
def test_observe_reports_the_forced_backend(backend, monkeypatch):
    if backend == "native":
        require_native()
    monkeypatch.setenv("SLOPFAST_BACKEND", backend)
    with dispatch.observe() as log:
        slopfast.build_markdown([("a.py", "a\n"), ("b.md", "# b\n")])
    assert log == [(AGGREGATE_OP, len("a\n") + len("# b\n"), backend)]
    with dispatch.observe() as log:
        assert dispatch.dispatch("t_op", 5, lambda: "n", lambda: "f") == backend[0]
    assert log == [("t_op", 5, backend)]


def test_observe_sees_both_paths_while_calibrating(monkeypatch):
    monkeypatch.delenv("SLOPFAST_BACKEND", raising=False)
    monkeypatch.setattr(native, "available", lambda: True)    # calibrate even on a fallback-only install
    with dispatch.observe() as log:
        assert dispatch.dispatch("t_calibrate", 100, lambda: "same", lambda: "same") == "same"
    names = [b for _, _, b in log]
    assert {"native", "fallback"} == set(names) and len(names) >= 2
    assert all(entry[:2] == ("t_calibrate", 100) for entry in log)
    row = cli.decision("t_calibrate", 100)
    assert row["why"] == "measured"
    assert cli.backend_used(log) == f"{row['backend']} (t_calibrate; both ran to calibrate)"
    with dispatch.observe() as log:                      # decided: one path, the one decided
        dispatch.dispatch("t_calibrate", 100, lambda: "same", lambda: "same")
    assert log == [("t_calibrate", 100, row["backend"])]


def test_observe_nests_spans_threads_and_changes_nothing(monkeypatch):
    import threading

    monkeypatch.setenv("SLOPFAST_BACKEND", "fallback")
    with dispatch.observe() as outer:
        with dispatch.observe() as inner:
            t = threading.Thread(target=dispatch.dispatch, args=("t_thread", 1, None, lambda: None))
            t.start()
            t.join()
        assert dispatch.dispatch("t_after", 2, lambda: 1, lambda: 2) == 2
    assert inner == [("t_thread", 1, "fallback")]
    assert outer == [("t_thread", 1, "fallback"), ("t_after", 2, "fallback")]
    assert dispatch._observers == []
    # a path that cannot serve the call stays None: forced native says so, and nothing ran
    monkeypatch.setenv("SLOPFAST_BACKEND", "native")
    with dispatch.observe() as log, pytest.raises(slopfast.BackendUnavailable, match="no native path"):
        dispatch.dispatch("t_none", 3, None, lambda: 1)
    assert log == [] and dispatch._observers == []


def test_observe_replaces_monkeypatching():
    assert not hasattr(cli, "observe_dispatch")
    original = dispatch.dispatch
    with dispatch.observe():
        assert dispatch.dispatch is original


# ---- token counts, --stats, --budget ----------------------------------------------------

def _tiktoken_count(data: bytes, name: str = "o200k_base") -> int:
    from slopfast import tokens
    from slopfast.fallbacks import tokens as fb_tokens
    return len(fb_tokens.encoding(name, lambda: tokens._ranks(name).ranks).encode_ordinary(data.decode("utf-8", "replace")))


def _token_tree(root: Path) -> None:
    write(root, {
        "big.py": "def f(x):\n    '''Doc.'''\n    return x + 1\n\n" * 400,
        "pkg/mid.md": "# Title\n\n" + "Some prose here. " * 600 + "\n\n## Part\n\ntext\n",
        "pkg/deep/small.txt": "tiny\n",
        "keep.py": "import os\n\nVALUE = 1\n" * 50,
    })


@pytest.mark.parametrize("encoding", [None, "cl100k_base"])
def test_tokens_in_the_summary_are_the_documents(backend, tmp_path, encoding):
    _token_tree(tmp_path / "t")
    args = ["aggregate", "t", "-o", "out.md", "--tokens"] + (["--encoding", encoding] if encoding else [])
    r = run(*args, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    n = _tiktoken_count((tmp_path / "out.md").read_bytes(), encoding or "o200k_base")
    assert f"({cli.count_text(n)} tokens)".encode() in r.stderr


def test_stats_lists_the_largest_files_and_each_directory(backend, tmp_path, monkeypatch):
    _token_tree(tmp_path / "t")
    r = run("aggregate", "t", "-o", "out.md", "--stats", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    monkeypatch.chdir(tmp_path)
    report = slopfast.aggregate_paths(["t"], "again.md", count_tokens=True)
    total = _tiktoken_count((tmp_path / "out.md").read_bytes())
    assert report.tokens == total
    err = r.stderr.decode()
    assert f"tokens (o200k_base): {total:,} in 4 files" in err
    largest = err.split("largest 4:\n")[1].splitlines()[:4]
    by_size = sorted(zip(report.file_tokens, (p for p, _ in report.files)), key=lambda x: -x[0])
    assert [line.split()[-1] for line in largest] == [p for _, p in by_size]
    assert [int(line.split()[1].replace(",", "")) for line in largest] == [n for n, _ in by_size]
    pkg = sum(n for n, (p, _) in zip(report.file_tokens, report.files) if "/pkg/" in p)
    assert re.search(rf"{pkg:,} +[\d.]+%\s+pkg/", err.replace("slopfast: ", "")), err


_stats_paths = st.lists(st.lists(st.sampled_from(["", "a", "b", "pkg", "x.py"]), min_size=1, max_size=6).map("/".join),
                        max_size=30)


@settings(max_examples=200, deadline=None)
@given(_stats_paths, st.data())
def test_stats_lines_sum_each_directory_and_rank_ties_in_order(paths, data):
    """The --stats view against its definition, on any paths (absolute, no
    directory, deeper than STATS_DEPTH, empty parts) and tied counts: the
    STATS_TOP files with most tokens, ties in document order, then every
    directory prefix of up to STATS_DEPTH levels with the tokens below it."""
    tokens = data.draw(st.lists(st.integers(0, 3), min_size=len(paths), max_size=len(paths)))
    files = [(p, 0) for p in paths]
    total = sum(tokens) + 7
    lines = cli.stats_lines(files, tokens, total, "o200k_base")
    top = [int(line.split()[0].replace(",", "")) for line in lines[2:2 + min(len(paths), cli.STATS_TOP)]] if paths else []
    order = sorted(range(len(paths)), key=lambda i: (-tokens[i], i))[:cli.STATS_TOP]
    assert top == [tokens[i] for i in order]
    assert [re.fullmatch(r" +[\d,]+ +[\d.]+%  (.*)", line)[1] for line in lines[2:2 + len(order)]] == [paths[i] for i in order]
    dirs: dict[tuple[str, ...], int] = {}
    for p, n in zip(paths, tokens):
        parts = tuple(p.split("/")[:-1])
        for depth in range(min(len(parts), cli.STATS_DEPTH) + 1):
            dirs[parts[:depth]] = dirs.get(parts[:depth], 0) + n
    shown = lines[lines.index("by directory:") + 1:] if "by directory:" in lines else []
    assert [int(line.split()[0].replace(",", "")) for line in shown] == ([dirs[k] for k in sorted(dirs)] if len(dirs) > 1 else [])


def test_step_down_rule():
    from slopfast.aggregate import BudgetError, step_down
    files = [(p, 0) for p in "abcd"]
    cost = {"a": (100, 10), "b": (300, 30), "c": (300, 20), "d": (50, 50)}
    assert step_down(files, cost, 5, 10_000, set()) == {}
    assert step_down(files, cost, 5, 500, set()) == {"b": "summary"}              # the largest first, ties in order
    assert step_down(files, cost, 5, 300, set()) == {"b": "summary", "c": "summary"}
    # all summaries still too many: the largest (d's summary is no smaller) go to the tree only
    assert step_down(files, cost, 5, 340, {"b"}) == {"c": "summary", "a": "summary", "d": "listed"}
    assert step_down(files, cost, 5, 70, set()) == {"b": "summary", "c": "summary", "a": "summary", "d": "listed"}
    assert step_down(files, cost, 5, 40, set()) == {"b": "listed", "c": "summary", "a": "summary", "d": "listed"}
    with pytest.raises(BudgetError) as caught:
        step_down(files, cost, 5, 300, {"b"})     # b stays whole: 305 at least
    assert caught.value.needed == 305


@pytest.mark.parametrize("budget", ["100k", "3k", "1500"])
def test_budget_fits_the_document_by_tiktoken(backend, tmp_path, budget):
    _token_tree(tmp_path / "t")
    r = run("aggregate", "t", "-o", "out.md", "--budget", budget, "--full", "keep.py", "-v", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    doc = (tmp_path / "out.md").read_bytes()
    limit = cli.parse_tokens(budget)
    assert _tiktoken_count(doc) <= limit
    assert b"## Files\n" in doc and b"keep.py" in doc and b"VALUE = 1\nimport os" in doc   # --full: whole
    stepped = re.findall(rb"^slopfast:   (.*)$", r.stderr, re.M)
    if limit >= 100_000:
        assert stepped == [] and b"to fit" not in r.stderr
    else:
        assert stepped and b"t/keep.py" not in stepped
        assert b"def f(x):\n    '''Doc.'''\n    return x + 1\n\ndef f" not in doc   # big.py stepped down


@pytest.mark.parametrize("options", [["--token-header"], ["--budget", "1k"], ["--budget", "1M", "--token-header"],
                                     ["--tokens"]])
@pytest.mark.parametrize("to", ["-o", "stdout"])
def test_a_document_made_in_a_temporary_file_leaves_out_its_output(backend, tmp_path, options, to):
    """--token-header and --budget make the document in a temporary file: the
    output inside the tree (-o, or stdout redirected there) is still left out."""
    write(tmp_path, {"a.txt": "a\n", "sub/b.txt": "b\n"})
    out = tmp_path / "sub" / "ctx.md"
    out.write_text("an earlier document\n")
    if to == "-o":
        r = run("aggregate", ".", "-o", str(out), "--tree", *options, cwd=tmp_path)
    else:
        with open(out, "wb") as f:
            r = subprocess.run([sys.executable, "-m", "slopfast", "aggregate", ".", "--tree", *options], cwd=tmp_path,
                               env=subprocess_env(), stdout=f, stderr=subprocess.PIPE, timeout=120)
    assert r.returncode == 0, r.stderr
    doc = out.read_bytes()
    assert headings(doc) == ["a.txt", "sub/b.txt"] and b"ctx.md" not in doc
    report = slopfast.aggregate_paths([tmp_path], out, **({"budget": 1000} if "--budget" in options
                                                          else {"token_header": True}))
    assert [p for p, _ in report.files] == [str(tmp_path / "a.txt"), str(tmp_path / "sub" / "b.txt")]


def test_budget_too_small_for_the_tree_is_an_error(backend, tmp_path):
    _token_tree(tmp_path / "t")
    r = run("aggregate", "t", "-o", "out.md", "--budget", "20", cwd=tmp_path)
    assert r.returncode == cli.EXIT_FATAL and b"even with every file listed only" in r.stderr
    assert (tmp_path / "out.md").read_bytes() == b""
    for bad in ("0", "1.5", "-3", "10x"):
        r = run("aggregate", "t", f"--budget={bad}", cwd=tmp_path)
        assert r.returncode == cli.EXIT_USAGE and b"not a token count" in r.stderr


def test_budget_in_the_library_says_what_stepped_down(backend, tmp_path):
    _token_tree(tmp_path / "t")
    report = slopfast.aggregate_paths([tmp_path / "t"], tmp_path / "o.md", budget=2000, format="xml")
    doc = (tmp_path / "o.md").read_bytes()
    assert report.tokens == _tiktoken_count(doc) <= 2000
    assert set(report.stepped_down) and all(v in ("summary", "listed") for v in report.stepped_down.values())
    listed = [p for p, v in report.stepped_down.items() if v == "listed"]
    shown = [p for p, _ in report.files]
    assert not set(listed) & set(shown)
    for p in listed + shown:        # every file is in the tree
        assert os.path.basename(p).encode() in doc.split(b"<files>")[1]


def _summaries_of(tmp_path, monkeypatch, split_at, fmt):
    from slopfast import aggregate, walk
    monkeypatch.setattr(aggregate, "SPLIT_SUMMARY_BYTES", split_at)
    found = [e for e in walk.walk([str(tmp_path / "t")], walk.WalkOptions()) if isinstance(e, walk.Found)]
    sizes = {e.path: os.path.getsize(e.path) for e in found}
    return found, aggregate._summary_tokens(found, sizes, "summary", aggregate.CountSpec(), {"format": fmt})


@pytest.mark.parametrize("fmt", ["markdown", "xml", "plain", "json"])
def test_summaries_counted_in_two_halves_are_counted_in_one(backend, tmp_path, monkeypatch, fmt):
    """--budget counts large summaries in two halves on two threads: the same
    counts as one pass (the second half numbered on), but where a file joins
    the one before it across the halves."""
    _token_tree(tmp_path / "t")
    write(tmp_path / "t", {f"pkg/n{i}.py": f"def g{i}():\n    return {i}\n" * (i + 1) for i in range(30)})
    found, one = _summaries_of(tmp_path, monkeypatch, 1 << 40, fmt)
    _, two = _summaries_of(tmp_path, monkeypatch, 0, fmt)
    assert list(two) == [e.path for e in found] and set(one) == set(two)
    assert sum(one[p] != two[p] for p in one) <= 2      # the files either side of the split
    assert sum(one.values()) - 3 <= sum(two.values()) <= sum(one.values()) + 3


@pytest.mark.parametrize("fmt", ["markdown", "plain"])
def test_budget_with_summaries_in_halves_is_the_same_on_both_backends(needs_native, tmp_path, monkeypatch, fmt):
    _token_tree(tmp_path / "t")
    write(tmp_path / "t", {f"pkg/n{i}.py": f"def g{i}():\n    return {i}\n" * (i + 1) for i in range(30)})
    monkeypatch.setattr(slopfast.aggregate, "SPLIT_SUMMARY_BYTES", 0)
    docs = []
    for backend in ("native", "fallback"):
        monkeypatch.setenv("SLOPFAST_BACKEND", backend)
        report = slopfast.aggregate_paths([tmp_path / "t"], tmp_path / f"{backend}.md", budget=1500, format=fmt)
        doc = (tmp_path / f"{backend}.md").read_bytes()
        assert report.stepped_down and report.tokens == _tiktoken_count(doc) <= 1500
        docs.append((doc, report.stepped_down))
    assert docs[0] == docs[1]


def test_the_second_half_of_the_summaries_is_numbered_on(tmp_path, monkeypatch):
    from slopfast import aggregate, walk
    _token_tree(tmp_path / "t")
    found = [e for e in walk.walk([str(tmp_path / "t")], walk.WalkOptions()) if isinstance(e, walk.Found)]
    real, calls = aggregate.stream, []

    def recording(events, *args, first_section=0, **kw):
        calls.append((first_section, [e.path for e in events]))
        return real(events, *args, first_section=first_section, **kw)

    monkeypatch.setattr(aggregate, "stream", recording)
    monkeypatch.setattr(aggregate, "SPLIT_SUMMARY_BYTES", 0)
    aggregate._summary_tokens(found, {e.path: 1 for e in found}, "summary", aggregate.CountSpec(), {"format": "xml"})
    (a, first), (b, second) = sorted(calls)
    assert (a, b) == (0, len(first)) and first + second == [e.path for e in found] and first and second


@pytest.mark.parametrize("half", [0, 1])
def test_a_failure_in_either_half_of_the_summaries_is_raised(needs_native, tmp_path, monkeypatch, half):
    from slopfast import aggregate, walk
    monkeypatch.setenv("SLOPFAST_BACKEND", "native")     # the fallback counts in one pass
    _token_tree(tmp_path / "t")
    found = [e for e in walk.walk([str(tmp_path / "t")], walk.WalkOptions()) if isinstance(e, walk.Found)]
    real = aggregate.stream

    def failing(events, *args, **kw):
        if (events[0] is found[0]) == (half == 0):
            raise OSError(5, f"half {half} made to fail")
        return real(events, *args, **kw)

    monkeypatch.setattr(aggregate, "stream", failing)
    monkeypatch.setattr(aggregate, "SPLIT_SUMMARY_BYTES", 0)
    with pytest.raises(OSError, match=f"half {half} made to fail"):
        aggregate._summary_tokens(found, {e.path: 1 for e in found}, "summary", aggregate.CountSpec(), {})


@pytest.mark.parametrize("fmt", ["markdown", "xml", "plain"])
def test_token_header_states_the_documents_count(backend, tmp_path, fmt):
    _token_tree(tmp_path / "t")
    write(tmp_path / "t", {"/lead.txt".lstrip("/"): "/starts with a slash\n"})
    r = run("aggregate", "t", "-o", "out", "--token-header", "--format", fmt, "--tokens", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    doc = (tmp_path / "out").read_bytes()
    n = _tiktoken_count(doc)
    assert doc.splitlines()[0] in (f"<!-- {n:,} tokens (o200k_base), this line included -->".encode(),
                                   f"{n:,} tokens (o200k_base), this line included".encode())
    assert f"({cli.count_text(n)} tokens)".encode() in r.stderr
    if fmt == "xml":
        import xml.dom.minidom
        xml.dom.minidom.parseString(doc)       # a comment before the root element is well-formed XML
    with_budget = run("aggregate", "t", "-o", "b", "--token-header", "--format", fmt, "--budget", "2500", cwd=tmp_path)
    assert with_budget.returncode == 0, with_budget.stderr
    doc = (tmp_path / "b").read_bytes()
    assert str(_tiktoken_count(doc)).encode() in doc.splitlines()[0].replace(b",", b"") and _tiktoken_count(doc) <= 2500


def test_token_header_is_not_for_json(tmp_path):
    r = run("aggregate", ".", "--token-header", "--format", "json", cwd=tmp_path)
    assert r.returncode == cli.EXIT_USAGE and b"no place for a header line" in r.stderr
    with pytest.raises(ValueError):
        slopfast.aggregate_paths([tmp_path], tmp_path / "o", token_header=True, format="json")


def test_token_options_from_the_project_file(backend, tmp_path):
    _token_tree(tmp_path / "t")
    write(tmp_path / "t", {"pyproject.toml": '[tool.slopfast]\nbudget = "2k"\ntoken-header = true\nencoding = "cl100k_base"\n'})
    r = run("aggregate", "t", "-o", "out", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    doc = (tmp_path / "out").read_bytes()
    n = _tiktoken_count(doc, "cl100k_base")
    assert n <= 2000 and doc.startswith(f"<!-- {n:,} tokens (cl100k_base)".encode()) and b"to fit --budget 2,000" in r.stderr
    write(tmp_path / "t", {"pyproject.toml": '[tool.slopfast]\nbudget = 0\n'})
    r = run("aggregate", "t", "-o", "out", cwd=tmp_path)
    assert r.returncode == cli.EXIT_USAGE and b"budget must be a token count" in r.stderr
