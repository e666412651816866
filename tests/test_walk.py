"""The walk behind `slopfast aggregate`: git's ignore rules with git as the oracle,
and the safety rules (symlinks, special files, the output itself).

The differential tests build trees in temporary git work trees and compare the
walk's file set with `git ls-files -z --cached --others --exclude-standard`:
hand-made trees, hypothesis-generated trees and patterns (from a grammar of
git's wildmatch), this repository itself and a copy of it with extra ignore
files. git runs with an isolated configuration (HOME, XDG_CONFIG_HOME,
GIT_CONFIG_NOSYSTEM), and so does the walk.

The walk's "file set" is every path it yields (taken, skipped with a note, or
unreadable) except special files (git does not list FIFOs and sockets). With
`hidden=True` it must equal git's list; the default (no hidden names) must equal
git's list without the paths that have a component starting with '.'.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slopfast import cli
from slopfast.ignore import PatternError as IgnorePatternError
from slopfast.ignore import parse_lines, parse_rule, read_index
from slopfast.walk import Found, PatternError, Skipped, Unreadable, WalkOptions, compile_patterns, walk

from conftest import subprocess_env

GIT = shutil.which("git")
needs_git = pytest.mark.skipif(GIT is None, reason="git is not installed")
POSIX = sys.platform not in ("win32",)
needs_posix = pytest.mark.skipif(not POSIX, reason="symlinks, FIFOs and byte names need POSIX here")
REPO = Path(__file__).resolve().parent.parent


# ---- helpers ----------------------------------------------------------------------------

def _isolated_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), GIT_CONFIG_NOSYSTEM="1", LC_ALL="C")
    return env


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """An empty HOME for git and for the walk (no user's excludes file, no ~/.gitconfig)."""
    h = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        for k in list(os.environ):
            if k.startswith("GIT_"):
                mp.delenv(k)
        mp.setenv("HOME", str(h))
        mp.setenv("XDG_CONFIG_HOME", str(h / ".config"))
        mp.setenv("GIT_CONFIG_NOSYSTEM", "1")
        yield h


def git(*args: str, cwd: Path, home: Path, input: bytes | None = None) -> bytes:
    p = subprocess.run([GIT, *args], cwd=cwd, env=_isolated_env(home), input=input, capture_output=True, timeout=60)
    assert p.returncode == 0, (args, p.stderr)
    return p.stdout


def git_files(root: Path, home: Path, *paths: str) -> list[bytes]:
    out = git("ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", *paths, cwd=root, home=home)
    return sorted({p for p in out.split(b"\0") if p})


def init_repo(root: Path, home: Path) -> None:
    git("init", "-q", str(root), cwd=root.parent, home=home)


def track(root: Path, home: Path, paths: list[bytes]) -> None:
    """`git add -f` these paths (literally: no pathspec magic)."""
    if paths:
        git("--literal-pathspecs", "add", "-f", "--pathspec-from-file=-", "--pathspec-file-nul",
            cwd=root, home=home, input=b"\0".join(paths))


@contextlib.contextmanager
def chdir(path):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def walk_events(root: Path, *paths: str, **options) -> list:
    with chdir(root):
        return list(walk(list(paths) or ["."], WalkOptions(**options)))


def walk_files(root: Path, *paths: str, **options) -> list[bytes]:
    """The walk's file set (module doc), in the walk's order, as bytes relative to root."""
    return [os.fsencode(e.path) for e in walk_events(root, *paths, **options)
            if not (isinstance(e, Skipped) and e.reason == "special")]


def hidden_free(paths: list[bytes]) -> list[bytes]:
    return [p for p in paths if not any(part.startswith(b".") for part in p.split(b"/"))]


def write_tree(root: Path, files: dict) -> None:
    for rel, content in files.items():
        p = Path(os.fsdecode(os.path.join(os.fsencode(root), rel if isinstance(rel, bytes) else os.fsencode(rel))))
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content if isinstance(content, bytes) else content.encode())


def assert_same_as_git(root: Path, home: Path, *paths: str) -> list[bytes]:
    expected = git_files(root, home, *paths)
    got = walk_files(root, *paths, hidden=True)
    assert got == sorted(got), "the walk's order is the byte order of the paths"
    assert got == expected
    assert walk_files(root, *paths) == hidden_free(expected)
    return expected


# ---- pattern parsing, as git reads an ignore file ------------------------------------------

def test_lines_split_at_newline_only():
    data = b"\xef\xbb\xbf#c\na\r\nb\x0bc\nd\x0ce\nf\xc2\x85g\n\n  \nh \ni\\ \nj\\\n\\#k\nl\0m\n!\n"
    assert parse_lines(data) == [b"a", b"b\x0bc", b"d\x0ce", b"f\xc2\x85g", b"", b"h", b"i\\ ", b"j\\", b"\\#k",
                                 b"l", b"!"]


def test_malformed_patterns_match_nothing_and_never_raise():
    for pattern in [b"[z-a].txt", b"!", b"foo\\", b"[", b"[a", b"[[:foo:]]", b"[\\", b"[a-\\", b"/", b""]:
        rule = parse_rule(pattern)
        assert rule.problem is not None, pattern
    assert parse_rule(b"[z-a].txt").regex is not None     # a reversed range: no character, not the whole pattern
    assert parse_rule(b"[z-a].txt").problem.startswith("reversed range")


@pytest.mark.parametrize("pattern", ["[z-a].txt", "!", "foo\\", "[abc", "[[:alfa:]]", "", "/"])
@pytest.mark.parametrize("option", ["--exclude", "--include", "--full"])
def test_malformed_command_line_pattern_is_a_usage_error(tmp_path, pattern, option, capsys):
    (tmp_path / "a.txt").write_text("a\n")
    with chdir(tmp_path):
        assert cli.main(["aggregate", ".", option, pattern]) == cli.EXIT_USAGE
    out, err = capsys.readouterr()
    assert out == "" and f"{option} {pattern!r}:" in err and "Traceback" not in err
    with pytest.raises(PatternError):
        compile_patterns([pattern])
    assert IgnorePatternError is PatternError


def test_malformed_gitignore_lines_do_not_crash_the_command(tmp_path):
    (tmp_path / ".gitignore").write_text("[z-a].txt\n!\nfoo\\\n[[:nope:]]\n[unterminated\n*.log\n")
    write_tree(tmp_path, {"a.txt": "a\n", "z.txt": "z\n", "x.log": "x\n", "foo\\": "f\n"})
    p = subprocess.run([sys.executable, "-m", "slopfast", "aggregate", "."], cwd=tmp_path, env=subprocess_env(),
                       capture_output=True, timeout=120)
    assert p.returncode == 0 and b"Traceback" not in p.stderr, p.stderr
    # [z-a].txt matches z.txt only (git's literal 'z' before the empty range); foo\ matches nothing
    assert p.stdout.count(b"### `") == 2 and b"### `a.txt`" in p.stdout and b"### `foo\\\\`" in p.stdout   # a backslash shown as \\


def test_posix_classes():
    rx = compile_patterns(["[[:alpha:]][[:digit:]].txt", "[[:upper:][:space:]]x", "[![:alnum:]]y"])
    assert rx.match_file("a1.txt") and rx.match_file("Z9.txt") and not rx.match_file("11.txt")
    assert rx.match_file("Qx") and rx.match_file(" x") and not rx.match_file("qx")
    assert rx.match_file("-y") and not rx.match_file("ay")
    # by bytes, as git: 'é' is two bytes in UTF-8, so one class does not match it, two do
    assert not rx.match_file("\xe9y") and compile_patterns(["[![:alnum:]][![:alnum:]]y"]).match_file("\xe9y")
    assert compile_patterns(["?y"]).match_file(os.fsdecode(b"\xffy")) and not compile_patterns(["?y"]).match_file("\xe9y")


# ---- git as the oracle: hand-made trees -------------------------------------------------------

HAND_TREE = {
    ".gitignore": "*.log\n!important.log\n/top-only.txt\nbuild/\ndocs/*.tmp\n# a comment\n\n"
                  "foo**/bar\na/**\\/b\n[[:space:]]*\n\\#hash\ntrail \nesc\\ \ncrlf\r\n[z-a]\n[unterminated\n"
                  "bad\\\n!\nv\x0bt\nnel\xc2\x85x\n**/deep/**\n/sl/*/x\n",
    "a.py": "a\n", "app.log": "n\n", "important.log": "k\n", "top-only.txt": "t\n", "build/out.py": "b\n",
    "docs/x.tmp": "x\n", "docs/deep/x.tmp": "x\n", "docs/readme.md": "r\n", "src/top-only.txt": "s\n",
    "src/build": "a file named build\n", "src/.gitignore": "!app.log\nsecret.py\n", "src/app.log": "a\n",
    "src/secret.py": "s\n", "src/ok.py": "o\n", "src/nested/build/gen.py": "g\n",
    "src/nested/.gitignore": "*\n!keep.txt\n!*/\n", "src/nested/keep.txt": "k\n", "src/nested/drop.py": "d\n",
    "other/app.log": "o\n", "foo/bar": "1", "foo/x/bar": "2", "foox/bar": "3", "fooy": "4",
    "a/b": "5", "a/x/b": "6", " lead": "7", "#hash": "8", "trail": "9", "trail ": "10", "esc ": "11",
    "esc": "12", "crlf": "13", "z": "14", "v\x0bt": "15", "nel\xc2\x85x": "16", "x/deep/y": "17",
    "deep/z": "18", "sl/a/x": "19", "sl/a/b/x": "20", "bad\\": "21", "-dash": "22", "sp ace/f": "23",
    ".hidden/h": "24", "src/.env": "25",
}


@needs_git
def test_hand_made_tree_matches_git(tmp_path, home):
    root = tmp_path / "proj"
    write_tree(root, {k: v.encode("latin-1") if "\x85" in v else v for k, v in HAND_TREE.items()})
    init_repo(root, home)
    listed = assert_same_as_git(root, home)
    assert b"foo/bar" not in listed and b"foo/x/bar" not in listed and b"foox/bar" not in listed
    assert b"a/x/b" not in listed and b"a/b" in listed
    assert b"trail" not in listed and b"trail " in listed and b"esc " not in listed and b"esc" in listed
    # git reads the 'z' of [z-a] as a literal before it sees the (empty) range z-a
    assert b"crlf" not in listed and b"z" not in listed and b"bad\\" in listed and b"-dash" in listed
    # a subdirectory argument: the .gitignore files above it apply
    assert_same_as_git(root, home, "src")
    assert_same_as_git(root, home, "docs")


@needs_git
def test_info_exclude_and_core_excludes_file(tmp_path, home):
    root = tmp_path / "proj"
    write_tree(root, {"a.txt": "a", "b.txt": "b", "c.txt": "c", "d.txt": "d", "sub/e.txt": "e", "keep.txt": "k"})
    init_repo(root, home)
    (root / ".git" / "info").mkdir(exist_ok=True)
    (root / ".git" / "info" / "exclude").write_text("a.txt\n*.md\n!keep.txt\n")
    # the default core.excludesFile: $XDG_CONFIG_HOME/git/ignore
    xdg = home / ".config" / "git"
    xdg.mkdir(parents=True, exist_ok=True)
    (xdg / "ignore").write_text("b.txt\nkeep.txt\n")
    try:
        listed = assert_same_as_git(root, home)
        assert listed == [b"c.txt", b"d.txt", b"keep.txt", b"sub/e.txt"]   # info/exclude beats the excludes file
        # core.excludesFile set in the repository's config (replaces the default), with ~ and quotes
        (home / "my ignore").write_text("c.txt\nsub/\n")
        git("config", "core.excludesFile", "~/my ignore", cwd=root, home=home)
        listed = assert_same_as_git(root, home)
        assert listed == [b"b.txt", b"d.txt", b"keep.txt"]
        # in the user's ~/.gitconfig instead, the repository's value removed
        git("config", "--unset", "core.excludesFile", cwd=root, home=home)
        (home / ".gitconfig").write_text('[core]\n\texcludesFile = "~/my ignore" ; a comment\n')
        assert assert_same_as_git(root, home) == [b"b.txt", b"d.txt", b"keep.txt"]
        # a .gitignore beats both
        (root / ".gitignore").write_text("!c.txt\n")
        assert b"c.txt" in assert_same_as_git(root, home)
    finally:
        shutil.rmtree(xdg)
        (home / ".gitconfig").unlink(missing_ok=True)


@needs_git
def test_relative_excludes_file_and_git_config_global(tmp_path, home, monkeypatch):
    root = tmp_path / "proj"
    write_tree(root, {"a.txt": "a", "b.txt": "b", "sub/a.txt": "a", "sub/c.txt": "c", "rel-ignore": "a.txt\n",
                      "sub/rel-ignore": "c.txt\n"})
    init_repo(root, home)
    git("config", "core.excludesFile", "rel-ignore", cwd=root, home=home)   # relative to the top
    assert b"sub/a.txt" not in assert_same_as_git(root, home, "sub")
    git("config", "--unset", "core.excludesFile", cwd=root, home=home)
    (tmp_path / "global").write_text(f"[core]\n\texcludesFile = {tmp_path / 'g-ignore'}\n")
    (tmp_path / "g-ignore").write_text("b.txt\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "global"))
    p = subprocess.run([GIT, "ls-files", "-z", "-co", "--exclude-standard"], cwd=root, capture_output=True,
                       env=dict(_isolated_env(home), GIT_CONFIG_GLOBAL=str(tmp_path / "global")))
    expected = sorted(x for x in p.stdout.split(b"\0") if x)
    assert b"b.txt" not in expected and walk_files(root, hidden=True) == expected


CONFIGS = [
    b'[core]\n\texcludesFile = plain\n',
    b'[core] excludesfile=same-line ; comment\n',
    b'[CORE]\n  ExcludesFile = "quoted # not a comment" # a comment\n',
    b'[core]\nexcludesFile = a\\\n  continued\n',
    b'[core]\nexcludesFile = "tab\\tand\\\\slash"\n',
    b'[core]\nexcludesFile = one\n[other]\nexcludesFile = no\n[core]\nexcludesFile = two   \n',
    b'[core "sub"]\nexcludesFile = not-core\n[core]\nexcludesFile = core\n',
    b'\xef\xbb\xbf[core]\r\nexcludesFile = crlf\r\n',
    b'# comment\n; another\n[core]\n\tbare\n\texcludesFile =   spaced   value  \n',
]


@needs_git
@pytest.mark.parametrize("config", CONFIGS)
def test_config_parser_agrees_with_git(config, tmp_path, home):
    from slopfast.ignore import _get, parse_config
    f = tmp_path / "config"
    f.write_bytes(config)
    p = subprocess.run([GIT, "config", "--file", str(f), "--get", "core.excludesFile"], capture_output=True,
                       env=_isolated_env(home))
    expected = p.stdout[:-1] if p.returncode == 0 else None
    assert _get(parse_config(config), "core", "excludesfile") == expected


@needs_git
def test_tracked_files_are_taken_even_when_ignored(tmp_path, home):
    root = tmp_path / "proj"
    write_tree(root, {".gitignore": "*.log\nbuild/\n", "a.log": "a", "b.log": "b", "build/keep.txt": "k",
                      "build/new.txt": "n", "build/sub/t.txt": "t", "build/sub/u.txt": "u",
                      "build/.gitignore": "!new.txt\n", "src/x.py": "x"})
    init_repo(root, home)
    track(root, home, [b"a.log", b"build/keep.txt", b"build/sub/t.txt"])
    listed = assert_same_as_git(root, home)
    assert listed == [b".gitignore", b"a.log", b"build/keep.txt", b"build/sub/t.txt", b"src/x.py"]
    # the tool's own rules still drop a tracked file
    (root / ".slopfastignore").write_text("a.log\n")
    assert b"a.log" not in walk_files(root, hidden=True)
    (root / ".slopfastignore").unlink()
    # and with --no-gitignore nothing of git's applies
    assert b"b.log" in walk_files(root, gitignore=False)


@needs_git
def test_index_versions_and_sha256(tmp_path, home):
    for version in ("2", "3", "4"):
        root = tmp_path / f"v{version}"
        write_tree(root, {".gitignore": "*.log\n", "x.log": "x", "dir/a b.log": "y", "dir/c.txt": "c",
                          "dir/deeper/name-with-a-long-common-prefix-1.log": "1",
                          "dir/deeper/name-with-a-long-common-prefix-2.log": "2"})
        init_repo(root, home)
        track(root, home, [b"x.log", b"dir/a b.log", b"dir/deeper/name-with-a-long-common-prefix-2.log"])
        git("update-index", f"--index-version={version}", cwd=root, home=home)
        assert read_index(str(root / ".git" / "index")) == sorted(
            p for p in git("ls-files", "-z", "--cached", cwd=root, home=home).split(b"\0") if p)
        assert_same_as_git(root, home)
    root = tmp_path / "sha256"
    root.mkdir()
    p = subprocess.run([GIT, "init", "-q", "--object-format=sha256", str(root)], env=_isolated_env(home),
                       capture_output=True)
    if p.returncode != 0:
        pytest.skip(f"this git cannot make a sha256 repository: {p.stderr!r}")
    write_tree(root, {".gitignore": "*.log\n", "x.log": "x", "y.log": "y"})
    track(root, home, [b"x.log"])
    assert assert_same_as_git(root, home) == [b".gitignore", b"x.log"]


@needs_git
def test_intent_to_add_and_skip_worktree_entries(tmp_path, home):
    root = tmp_path / "proj"
    write_tree(root, {".gitignore": "*.log\n", "i.log": "i", "s.log": "s", "n.log": "n"})
    init_repo(root, home)
    track(root, home, [b"s.log"])
    git("add", "-f", "-N", "i.log", cwd=root, home=home)            # extended flags (index v3)
    git("update-index", "--skip-worktree", "s.log", cwd=root, home=home)
    assert assert_same_as_git(root, home) == [b".gitignore", b"i.log", b"s.log"]


@needs_git
def test_nested_repository_is_walked_with_its_own_rules(tmp_path, home):
    root = tmp_path / "outer"
    write_tree(root, {".gitignore": "*.txt\n", "a.py": "a", "inner/b.txt": "b", "inner/c.py": "c",
                      "inner/.gitignore": "*.py\n", "inner/d.md": "d"})
    init_repo(root, home)
    init_repo(root / "inner", home)
    (root / "inner" / ".git" / "info" / "exclude").write_text("d.md\n")
    track(root / "inner", home, [b"c.py"])
    outer = git_files(root, home)
    assert outer == [b".gitignore", b"a.py", b"inner/"]               # git shows the nested repository as one entry
    inner = [b"inner/" + p for p in git_files(root / "inner", home)]
    assert inner == [b"inner/.gitignore", b"inner/b.txt", b"inner/c.py"]   # its rules, not the outer's
    assert walk_files(root, hidden=True) == [b".gitignore", b"a.py"] + inner


@needs_git
def test_linked_worktree_reads_its_index_and_the_common_info_exclude(tmp_path, home):
    root = tmp_path / "main"
    write_tree(root, {".gitignore": "*.log\n", "a.txt": "a", "t.log": "t"})
    init_repo(root, home)
    track(root, home, [b".gitignore", b"a.txt", b"t.log"])
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "c", cwd=root, home=home)
    (root / ".git" / "info").mkdir(exist_ok=True)
    (root / ".git" / "info" / "exclude").write_text("x.md\n")
    wt = tmp_path / "wt"
    git("worktree", "add", "-q", str(wt), cwd=root, home=home)
    assert (wt / ".git").is_file()
    write_tree(wt, {"x.md": "x", "y.md": "y", "u.log": "u"})
    assert assert_same_as_git(wt, home) == [b".gitignore", b"a.txt", b"t.log", b"y.md"]


def test_slopfastignore_placement_and_independence(tmp_path, home):
    root = tmp_path / "proj"
    write_tree(root, {".slopfastignore": "*.lock\n/top.txt\n", "top.txt": "t", "a.lock": "l",
                      "sub/top.txt": "s", "sub/.slopfastignore": "!keep.lock\n", "sub/keep.lock": "k",
                      "sub/b.lock": "b", "sub/deep/c.txt": "c", ".gitignore": "sub/deep/\n"})
    assert walk_files(root) == [b"sub/keep.lock", b"sub/top.txt"]
    # above the PATH argument (outside a work tree: the chain starts at PATH, so not here)
    assert walk_files(root / "sub", ".") == [b"b.lock", b"deep/c.txt", b"keep.lock", b"top.txt"]
    # with --no-gitignore the tool's own rules still apply
    assert walk_files(root, gitignore=False) == [b"sub/deep/c.txt", b"sub/keep.lock", b"sub/top.txt"]
    if GIT is not None:
        init_repo(root, home)            # now a work tree: the chain starts at its top
        assert walk_files(root / "sub", ".") == [b"keep.lock", b"top.txt"]


@needs_git
def test_ignored_directory_named_on_the_command_line_is_walked(tmp_path, home):
    # as a file named on the command line is taken: the rules apply below it
    root = tmp_path / "proj"
    write_tree(root, {".gitignore": "build/\n*.o\n", "build/a.c": "a", "build/a.o": "o", "build/sub/b.c": "b"})
    init_repo(root, home)
    assert git_files(root, home, "build") == []
    assert walk_files(root, "build") == [b"build/a.c", b"build/sub/b.c"]


# a tree outside any work tree: a .gitignore, what the default ignores leave out, a .slopfastignore
OUTSIDE_TREE = {".gitignore": "*.log\n", "a.py": "a", "a.log": "l", "__pycache__/a.pyc": "c",
                "node_modules/m.js": "m", ".venv/bin/python": "p", "x.pyc": "c", "pkg.egg-info/PKG": "p",
                "src/node_modules/n.js": "n", ".slopfastignore": "!node_modules/\nsecret.txt\n", "secret.txt": "s"}


def test_outside_a_work_tree(tmp_path, home):
    if any((p / ".git").exists() for p in tmp_path.parents):
        pytest.skip("the temp directory lies inside a git work tree")
    write_tree(tmp_path, OUTSIDE_TREE)
    # .gitignore files apply; the default ignores stand in for a repository's rules
    assert walk_files(tmp_path, hidden=True) == [b".gitignore", b".slopfastignore", b"a.py",
                                                 b"node_modules/m.js", b"src/node_modules/n.js"]
    assert walk_files(tmp_path, hidden=True, default_ignores=False) == [
        b".gitignore", b".slopfastignore", b".venv/bin/python", b"__pycache__/a.pyc", b"a.py",
        b"node_modules/m.js", b"pkg.egg-info/PKG", b"src/node_modules/n.js", b"x.pyc"]
    # the user's core.excludesFile applies outside a work tree too
    xdg = home / ".config" / "git"
    xdg.mkdir(parents=True, exist_ok=True)
    (xdg / "ignore").write_text("a.py\n")
    try:
        assert b"a.py" not in walk_files(tmp_path)
    finally:
        shutil.rmtree(xdg)


@needs_git
def test_default_ignores_do_not_apply_inside_a_work_tree(tmp_path, home):
    root = tmp_path / "proj"
    write_tree(root, {"a.py": "a", "__pycache__/a.pyc": "c", "node_modules/m.js": "m"})
    init_repo(root, home)
    assert assert_same_as_git(root, home) == [b"__pycache__/a.pyc", b"a.py", b"node_modules/m.js"]
    # --no-gitignore: git's rules are not used, so the defaults are
    assert walk_files(root, gitignore=False) == [b"a.py"]


@needs_git
def test_symlinked_gitignore_is_not_read(tmp_path, home):
    root = tmp_path / "proj"
    write_tree(root, {"rules": "*.txt\n", "a.txt": "a", "b.py": "b"})
    os.symlink("rules", root / ".gitignore")
    init_repo(root, home)
    assert b"a.txt" in assert_same_as_git(root, home)


def test_a_junction_is_judged_as_a_symlink_to_a_directory(tmp_path, monkeypatch):
    """os.scandir calls a Windows junction a directory; the Python walk does not
    enter it (a link to anywhere) unless --follow-symlinks, as for a symlink to a
    directory, and as the C walk reports it (lib/walk.c, entry_of). Here a
    directory stands in for the junction."""
    from slopfast import walk as walk_module
    write_tree(tmp_path, {"a.txt": "a", "junction/secret.txt": "s", "sub/b.txt": "b"})
    monkeypatch.setattr(walk_module, "_is_junction", lambda entry: entry.name == "junction")
    with chdir(tmp_path):
        events = list(walk(["."], WalkOptions(), native=False))
        followed = list(walk(["."], WalkOptions(follow_symlinks=True), native=False))
    assert [(e.path, getattr(e, "reason", "found")) for e in events] == \
        [("a.txt", "found"), ("junction", "directory-symlink"), ("sub/b.txt", "found")]
    assert [e.path for e in followed] == ["a.txt", "junction/secret.txt", "sub/b.txt"]


def test_a_junction_is_known_by_its_reparse_tag(monkeypatch):
    from slopfast import walk as walk_module

    class Entry:
        def __init__(self, tag: int) -> None:
            self.tag = tag

        def stat(self, follow_symlinks: bool = True):
            assert not follow_symlinks
            return type("Stat", (), {"st_reparse_tag": self.tag})()

    monkeypatch.setattr(walk_module, "_WINDOWS", True)
    mount_point, symlink = 0xA0000003, 0xA000000C      # winnt.h's IO_REPARSE_TAG_*
    assert walk_module._is_junction(Entry(mount_point))
    assert not walk_module._is_junction(Entry(symlink)) and not walk_module._is_junction(Entry(0))


@needs_posix
def test_symlinked_ignore_file_is_not_read_without_o_nofollow(tmp_path, monkeypatch):
    """Where os has no O_NOFOLLOW (Windows), the symlink is refused first, as
    git's open_nofollow does there and the C walk's Win32 calls do."""
    from slopfast import ignore
    (tmp_path / "rules").write_text("*.txt\n")
    os.symlink("rules", tmp_path / ".gitignore")
    monkeypatch.delattr(os, "O_NOFOLLOW")
    assert ignore.read_ignore_file(str(tmp_path / ".gitignore")) is None
    assert [r.pattern for r in ignore.read_ignore_file(str(tmp_path / ".gitignore"), follow=True).rules] == [b"*.txt"]


# ---- git as the oracle: generated trees and patterns ------------------------------------------

NAME_PARTS = ["a", "b", "ab", "x", ".t", ".py", "-", " ", "[", "]", "*", "?", "!", "#", "\\", "\xe9", "\xff"]
DIRS = [b"", b"a/", b"b/", b"a/b/", b"a/x/", b"d/", b"d/a/"]


def _names():
    return st.lists(st.sampled_from(NAME_PARTS), min_size=1, max_size=3).map(
        lambda parts: "".join(parts).encode("utf-8", "surrogateescape").replace(b"\xc3\xbf", b"\xff"))


def _files():
    def no_clash(paths):   # a path cannot be a file and a directory at once
        paths = sorted(set(paths))
        return [p for p in paths if not any(q.startswith(p + b"/") for q in paths)]

    return st.lists(st.tuples(st.sampled_from(DIRS), _names()), min_size=1, max_size=14).map(
        lambda items: no_clash(d + n for d, n in items))


ATOMS = ["a", "b", "ab", "x", "t", ".t", ".py", "-", " ", "*", "**", "?", "[ab]", "[!a]", "[^a]", "[a-c]",
         "[z-a]", "[[:alpha:]]", "[[:punct:]]", "[![:alnum:]]", "[[:foo:]]", "[]a]", "[", "\\*", "\\[", "\\ ",
         "\\a", "\\!", "\\#", "\xe9", "[\xe9]", "\\"]


def _segment():
    return st.lists(st.sampled_from(ATOMS), min_size=1, max_size=3).map("".join)


def _pattern():
    return st.tuples(
        st.sampled_from(["", "", "", "!", "#", "\\#"]),
        st.sampled_from(["", "", "/", "**/"]),
        st.lists(_segment(), min_size=1, max_size=3).map("/".join),
        st.sampled_from(["", "", "/", "/**", "  ", "\\ ", "\r"]),
    ).map(lambda t: "".join(t).encode("utf-8"))


def _ignore_file():
    return st.lists(_pattern(), max_size=5).map(lambda lines: b"\n".join(lines) + b"\n")


_SPECIAL = b"*?[\\"


def _literal(c: int) -> bytes:
    return (b"\\" if c in _SPECIAL else b"") + bytes([c])


@st.composite
def _derived(draw, paths: list[bytes], base: bytes) -> bytes:
    """A pattern made from a path of the tree (below `base`), so that it matches it,
    or nearly: each component kept, or turned into '*', '**', '?'s or brackets."""
    below = [p[len(base):] for p in paths if p.startswith(base) and p != base]
    if not below:
        return draw(_pattern())
    path = draw(st.sampled_from(below))
    parts = path.split(b"/")
    cut = draw(st.integers(1, len(parts)))        # the path itself or one of its directories
    parts = parts[:cut]
    out = []
    for part in parts:
        how = draw(st.sampled_from(["keep", "keep", "star", "globstar", "question", "bracket", "class", "suffix"]))
        if how == "star":
            out.append(b"*")
        elif how == "globstar":
            out.append(b"**")
        elif how == "suffix":
            out.append(b"*" + b"".join(_literal(c) for c in part[-1:]))
        else:
            chunk = []
            k = draw(st.integers(0, len(part) - 1))
            for i, c in enumerate(part):
                if i == k and how == "question":
                    chunk.append(b"?")
                elif i == k and how == "bracket":
                    other = draw(st.sampled_from([b"", b"a", b"-", b"]", b"x-z"]))
                    neg = draw(st.sampled_from([b"", b"!"]))
                    chunk.append(b"[" + neg + (b"\\" + bytes([c]) if c in b"]\\-!^" else bytes([c])) + other + b"]")
                elif i == k and how == "class":
                    chunk.append(draw(st.sampled_from([b"[[:alpha:]]", b"[[:punct:]]", b"[![:alnum:]]",
                                                       b"[[:space:][:digit:]]", b"[[:lower:]]"])))
                else:
                    chunk.append(_literal(c))
            out.append(b"".join(chunk))
    body = b"/".join(out)
    if body[:1] in (b"!", b"#"):
        body = b"\\" + body
    if len(out) == 1 and draw(st.booleans()):
        body = b"/" + body                           # anchored
    elif len(out) > 1 and draw(st.booleans()):
        body = b"**/" + body
    if draw(st.booleans()):
        body += b"/"                                 # directories only
    if draw(st.integers(0, 3)) == 0:
        body = b"!" + body
    return body


@st.composite
def _rules(draw, paths: list[bytes], base: bytes) -> bytes:
    lines = draw(st.lists(st.one_of(_pattern(), _derived(paths, base), _derived(paths, base)), max_size=6))
    return b"\n".join(lines) + b"\n"


@st.composite
def _tree(draw):
    files = draw(_files())
    dirs = sorted({f[: f.rfind(b"/") + 1] for f in files} | {b""})
    paths = sorted(set(files) | {d.rstrip(b"/") for d in dirs if d})
    ignores = {d: draw(_rules(paths, d)) for d in draw(st.lists(st.sampled_from(dirs), max_size=3, unique=True))}
    exclude = draw(_rules(paths, b"")) if draw(st.booleans()) else None
    excludes_file = draw(_rules(paths, b"")) if draw(st.booleans()) else None
    tracked = draw(st.lists(st.sampled_from(files), max_size=4, unique=True))
    return files, ignores, exclude, excludes_file, tracked


GENERATED: dict = {"trees": 0, "patterns": 0}   # counts, for the record (print them with -s)


@pytest.fixture(scope="module", autouse=True)
def _report_generated():
    yield
    if GENERATED["trees"]:
        print(f"\ngenerated differential: {GENERATED}")


def make_generated_repo(root: Path, home, tree) -> None:
    """A generated tree (_tree()) as a git repository at root: its files, .gitignore
    files, info/exclude, core.excludesFile and the files it tracks."""
    files, ignores, exclude, excludes_file, tracked = tree
    init_repo(root, home)
    for f in files:
        p = os.path.join(os.fsencode(root), f)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as fh:
            fh.write(b"x\n")
    for d, content in ignores.items():
        with open(os.path.join(os.fsencode(root), d, b".gitignore"), "wb") as fh:
            fh.write(content)
    if exclude is not None:
        (root / ".git" / "info").mkdir(exist_ok=True)
        (root / ".git" / "info" / "exclude").write_bytes(exclude)
    if excludes_file is not None:
        (root / ".git" / "my-excludes").write_bytes(excludes_file)
        git("config", "core.excludesFile", str(root / ".git" / "my-excludes"), cwd=root, home=home)
    track(root, home, tracked)


@needs_git
@settings(max_examples=int(os.environ.get("SLOPFAST_WALK_EXAMPLES", "300")), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(tree=_tree())
def test_generated_trees_match_git(tree, home, tmp_path_factory):
    files, ignores, exclude, excludes_file, tracked = tree
    root = Path(tempfile.mkdtemp(dir=tmp_path_factory.getbasetemp()))
    try:
        make_generated_repo(root, home, tree)
        GENERATED["trees"] += 1
        GENERATED["patterns"] += sum(len(parse_lines(c)) for c in
                                     [*ignores.values(), exclude or b"", excludes_file or b""])
        expected = git_files(root, home)
        got = walk_files(root, hidden=True)
        assert got == expected, (files, ignores, exclude, excludes_file, tracked)
        on_disk = len(files) + len(ignores)
        GENERATED["files"] = GENERATED.get("files", 0) + on_disk
        GENERATED["left out"] = GENERATED.get("left out", 0) + on_disk - len(expected)
        assert walk_files(root) == hidden_free(expected)
        for d in sorted({f[: f.find(b"/")] for f in files if b"/" in f}):   # a subdirectory as the PATH argument
            # (only one git does not ignore: a directory named on the command line is walked whatever
            # the rules say of it, where git lists only the tracked files below an ignored one)
            ignored = subprocess.run([GIT, "check-ignore", "-q", "--no-index", "--", os.fsdecode(d)], cwd=root,
                                     env=_isolated_env(home)).returncode == 0
            if not ignored:
                GENERATED["subdirs"] = GENERATED.get("subdirs", 0) + 1
                sub = [p for p in expected if p.startswith(d + b"/")]
                assert walk_files(root, os.fsdecode(d), hidden=True) == sub
    finally:
        shutil.rmtree(root)


# ---- git as the oracle: this repository ---------------------------------------------------------

def _real_repo_compare(root: Path, home: Path) -> list[bytes]:
    """The walk against git on a work tree that others may be editing: retried a few
    times, paths git lists that are not on disk (deleted, still in the index) left out."""
    for attempt in range(5):
        expected = [p for p in git_files(root, home) if os.path.lexists(os.path.join(os.fsencode(root), p))]
        got = walk_files(root, hidden=True)
        if got == expected:
            return got
    assert got == expected
    return got


@needs_git
def test_this_repository_matches_git(home):
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    listed = _real_repo_compare(REPO, home)
    assert b"slopfast/walk.py" in listed and not any(p.startswith(b".venv") for p in listed)


@needs_git
def test_a_copy_of_this_repository_with_more_ignore_files(tmp_path, home):
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    if not (REPO / ".git").is_dir():
        # a linked worktree: the copy's .git file would point at this checkout's
        # index and config, which the test changes
        pytest.skip("a linked git worktree (.git is a file)")
    root = tmp_path / "copy"
    skip = {".venv", ".venv-ci", "build", "__pycache__", ".hypothesis", ".pytest_cache", "slopfast.egg-info"}
    shutil.copytree(REPO, root, symlinks=True, ignore=lambda d, names: [n for n in names if n in skip])
    (root / "tests" / ".gitignore").write_text("*.py\n!test_walk.py\ndata/**/*.md\n")
    (root / "docs" / ".gitignore").write_text("/*.md\n!cli.md\n")
    (root / ".git" / "info").mkdir(exist_ok=True)
    (root / ".git" / "info" / "exclude").write_text("lib/*.h\nfuzz/\n")
    (home / "global-ignore").write_text("*.toml\nLICENSE\n")
    git("config", "core.excludesFile", str(home / "global-ignore"), cwd=root, home=home)
    git("rm", "-r", "-q", "--cached", "tools", cwd=root, home=home)      # untracked now: the rules decide
    (root / "tools" / ".gitignore").write_text("*.py\n")
    listed = _real_repo_compare(root, home)
    assert b"tests/test_walk.py" in listed and b"tests/test_cli.py" in listed   # tracked: kept
    assert not any(p.startswith(b"tools/") and p.endswith(b".py") for p in listed)
    assert_same_as_git(root, home, "tests")
    assert_same_as_git(root, home, "docs")


# ---- symlinks ------------------------------------------------------------------------------

@needs_posix
def test_symlink_out_of_the_tree_is_not_followed(tmp_path):
    secret = tmp_path / "home" / ".ssh" / "id_rsa"
    secret.parent.mkdir(parents=True)
    secret.write_text("PRIVATE KEY\n")
    repo = tmp_path / "repo"
    write_tree(repo, {"a.txt": "a\n", "docs/inner.txt": "inner\n", ".env": "SECRET=1\n"})
    os.symlink(secret, repo / "notes.txt")
    os.symlink("../docs/inner.txt", repo / "docs" / "up-and-back.txt")
    os.symlink("inner.txt", repo / "docs" / "same-dir.txt")
    os.symlink("../../home/.ssh/id_rsa", repo / "docs" / "relative-out.txt")
    os.symlink(".env", repo / "env.txt")                     # in the tree, but hidden
    events = {e.path: e for e in walk_events(repo)}
    assert events["notes.txt"].reason == "symlink-outside"
    assert events["docs/relative-out.txt"].reason == "symlink-outside"
    assert events["env.txt"].reason == "symlink-hidden"
    assert events["docs/same-dir.txt"].content == b"inner\n"      # followed: read from the vetted descriptor
    assert events["docs/up-and-back.txt"].content == b"inner\n"
    assert events["a.txt"].content is None
    p = subprocess.run([sys.executable, "-m", "slopfast", "aggregate", ".", "-v"], cwd=repo, env=subprocess_env(),
                       capture_output=True, timeout=120)    # -v: a note per skipped file
    assert p.returncode == 0 and b"PRIVATE KEY" not in p.stdout and b"SECRET" not in p.stdout
    assert b"slopfast: skipped notes.txt: symlink to a file outside the tree walked (not followed; " \
           b"--follow-symlinks follows it)\n" in p.stderr
    assert b"### `docs/same-dir.txt`\n\n```txt\ninner\n\n```" in p.stdout
    # a symlink named on the command line: its tree is its own directory
    assert walk_events(repo, "notes.txt")[0].reason == "symlink-outside"
    assert walk_events(repo, "docs/same-dir.txt")[0].content == b"inner\n"
    # --follow-symlinks follows it (and --hidden the hidden one)
    events = {e.path: e for e in walk_events(repo, follow_symlinks=True)}
    assert events["notes.txt"].content == b"PRIVATE KEY\n"
    assert {e.path: e for e in walk_events(repo, hidden=True)}["env.txt"].content == b"SECRET=1\n"


@needs_posix
def test_symlinked_content_identical_on_both_backends(tmp_path, monkeypatch):
    from slopfast import native
    write_tree(tmp_path, {"a.md": "# A\n\ntext\n", "b.py": "def f():\n    return 1\n"})
    os.symlink("a.md", tmp_path / "link.md")
    os.symlink("b.py", tmp_path / "link.py")
    outputs = []
    for backend in ["fallback"] + (["native"] if native.available() else []):
        for mode in ("full", "summary"):
            p = subprocess.run([sys.executable, "-m", "slopfast", "aggregate", ".", "--mode", mode],
                               cwd=tmp_path, env=subprocess_env(SLOPFAST_BACKEND=backend), capture_output=True,
                               timeout=120)
            assert p.returncode == 0, p.stderr
            outputs.append((mode, p.stdout))
            link_section = p.stdout.split(b"### `link.md`")[1].split(b"---")[0]
            real_section = p.stdout.split(b"### `a.md`")[1].split(b"---")[0]
            assert link_section == real_section
    assert len({o for o in outputs if o[0] == "full"}) == 1 and len({o for o in outputs if o[0] == "summary"}) == 1


@needs_posix
def test_directory_symlinks(tmp_path):
    write_tree(tmp_path, {"tree/a/x.txt": "x\n", "outside/o.txt": "o\n"})
    root = tmp_path / "tree"
    os.symlink("a", root / "b")                  # inside: not followed (a is walked anyway)
    os.symlink("..", root / "a" / "up")          # a loop
    os.symlink(tmp_path / "outside", root / "out")
    events = walk_events(root)
    assert [(e.path, getattr(e, "reason", "found")) for e in events] == [
        ("a/up", "directory-symlink"), ("a/x.txt", "found"), ("b", "directory-symlink"), ("out", "directory-symlink")]
    events = walk_events(root, follow_symlinks=True)
    assert [(e.path, getattr(e, "reason", "found")) for e in events] == [
        ("a/up", "symlink-loop"), ("a/x.txt", "found"), ("b/up", "symlink-loop"), ("b/x.txt", "found"),
        ("out/o.txt", "found")]


@needs_posix
def test_symlink_to_a_fifo_is_not_opened(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    os.symlink("fifo", tmp_path / "link")
    events = run_with_timeout(lambda: walk_events(tmp_path))
    assert [(e.path, e.reason, e.detail) for e in events] == [
        ("fifo", "special", "not a regular file (a FIFO)"),
        ("link", "special", "symlink to a file that is not a regular file (a FIFO)")]


# ---- special files ---------------------------------------------------------------------------

def run_with_timeout(fn, timeout: float = 20.0):
    """fn() in a thread; a failure (not a hung test) if it does not return in time."""
    result: list = []
    error: list = []

    def target():
        try:
            result.append(fn())
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            error.append(exc)

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        pytest.fail(f"did not return within {timeout} s (blocked on a FIFO?)")
    if error:
        raise error[0]
    return result[0]


@needs_posix
def test_fifo_and_socket_are_skipped_never_opened(tmp_path, monkeypatch):
    import socket

    write_tree(tmp_path, {"a.txt": "a\n"})
    os.mkfifo(tmp_path / "fifo")
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(tmp_path / "sock"))
    except OSError:
        sock = None
    import slopfast.walk as walk_module
    opened = []
    real_open = os.open

    def spy(path, *args, **kwargs):
        opened.append(os.path.basename(os.fspath(path)))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(walk_module.os, "open", spy)
    events = run_with_timeout(lambda: walk_events(tmp_path))
    monkeypatch.undo()
    assert [e.path for e in events if isinstance(e, Found)] == ["a.txt"]
    assert Skipped("fifo", "special", "not a regular file (a FIFO)") in events
    if sock is not None:
        assert Skipped("sock", "special", "not a regular file (a socket)") in events
        sock.close()
    assert "fifo" not in opened and "sock" not in opened
    # named on the command line: the same
    assert run_with_timeout(lambda: walk_events(tmp_path, "fifo")) == [
        Skipped("fifo", "special", "not a regular file (a FIFO)")]
    # the whole command, in a process of its own with a timeout
    p = subprocess.run([sys.executable, "-m", "slopfast", "aggregate", ".", "fifo", "-v"], cwd=tmp_path,
                       env=subprocess_env(), capture_output=True, timeout=60)    # -v: a note per skipped file
    assert p.returncode == 0 and p.stdout.count(b"### `") == 1
    assert p.stderr.startswith(b"slopfast: skipped fifo: not a regular file (a FIFO)\n" + (
        b"slopfast: skipped sock: not a regular file (a socket)\n" if sock is not None else b"")
        + b"slopfast: included 1 file, 2 B;")


@needs_posix
def test_fifo_as_an_ignore_file_does_not_block(tmp_path):
    write_tree(tmp_path, {"a.txt": "a\n", "sub/b.txt": "b\n"})
    for name in (".gitignore", ".slopfastignore", "sub/.gitignore"):
        os.mkfifo(tmp_path / name)
    events = run_with_timeout(lambda: walk_events(tmp_path, hidden=True))
    assert [e.path for e in events if isinstance(e, Found)] == ["a.txt", "sub/b.txt"]


@needs_posix
def test_file_swapped_for_a_fifo_after_listing_is_not_read(tmp_path, monkeypatch):
    """The race the walk closes: listed as a regular file, a FIFO when opened."""
    write_tree(tmp_path, {"a.txt": "a\n", "swap.txt": "was a file\n"})
    import slopfast.walk as walk_module
    real_open = os.open

    def swapping_open(path, flags, *args, **kwargs):
        if os.path.basename(os.fspath(path)) == "swap.txt" and not os.path.exists(tmp_path / "swapped"):
            os.unlink(tmp_path / "swap.txt")
            os.mkfifo(tmp_path / "swap.txt")
            (tmp_path / "swapped").write_text("")
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(walk_module.os, "open", swapping_open)
    events = run_with_timeout(lambda: walk_events(tmp_path))
    assert Skipped("swap.txt", "special", "not a regular file (a FIFO)") in events


@needs_posix
def test_file_swapped_for_a_symlink_after_listing_is_not_followed(tmp_path, monkeypatch):
    write_tree(tmp_path, {"tree/a.txt": "a\n", "secret": "SECRET\n"})
    root = tmp_path / "tree"
    import slopfast.walk as walk_module
    real_open = os.open

    def swapping_open(path, flags, *args, **kwargs):
        if os.path.basename(os.fspath(path)) == "a.txt" and not os.path.islink(root / "a.txt"):
            os.unlink(root / "a.txt")
            os.symlink(tmp_path / "secret", root / "a.txt")
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(walk_module.os, "open", swapping_open)
    events = walk_events(root)
    assert events == [Skipped("a.txt", "changed", "became a symlink during the walk (not followed)")]


# ---- odd names ------------------------------------------------------------------------------

ODD_NAMES = [b"with space.txt", b"new\nline.txt", b"caf\xe9.txt", b"\xff\xfe.txt", b"-rf", b"--help", b"-o",
             b"tab\there", b"back\\slash", b"quote\"'.txt", b"#hash", b"!bang", b"[brackets]", b"*star*",
             b"emoji \xf0\x9f\x8e\x89.md", b"trailing space "]


@needs_git
@needs_posix
def test_odd_names_match_git_and_reach_the_document(tmp_path, home):
    root = tmp_path / "proj"
    root.mkdir()
    try:
        for name in ODD_NAMES:
            with open(os.path.join(os.fsencode(root), name), "wb") as f:
                f.write(b"content of " + name.replace(b"\n", b"\\n") + b"\n")
            os.makedirs(os.path.join(os.fsencode(root), b"d " + name.replace(b"\n", b"_")), exist_ok=True)
            with open(os.path.join(os.fsencode(root), b"d " + name.replace(b"\n", b"_"), name), "wb") as f:
                f.write(b"x\n")
    except OSError as exc:
        pytest.skip(f"this file system refuses such names: {exc}")
    (root / ".gitignore").write_bytes(b"\\#hash\n\\!bang\n")
    init_repo(root, home)
    listed = assert_same_as_git(root, home)
    assert b"-rf" in listed and b"new\nline.txt" in listed and b"#hash" not in listed
    p = subprocess.run([sys.executable, "-m", "slopfast", "aggregate", "."], cwd=root,
                       env=subprocess_env(SLOPFAST_BACKEND="fallback"), capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr
    shown = [n for n in listed if not n.startswith(b".")]
    assert p.stdout.count(b"\n\n---\n\n") == len(shown) - 1
    from slopfast.fallbacks.aggregate import shown_path
    for name in shown:   # (control bytes, a backslash, bytes outside UTF-8 escaped: docs/build-markdown.md)
        assert b"### `" + shown_path(name) + b"`" in p.stdout, name
    # a file named like an option, on the command line after --
    p = subprocess.run([sys.executable, "-m", "slopfast", "aggregate", "--", "-rf", "--help"], cwd=root,
                       env=subprocess_env(), capture_output=True, timeout=120)
    assert p.returncode == 0 and p.stdout.count(b"### `") == 2, p.stderr


# ---- the output never includes itself ----------------------------------------------------------

def test_stdout_redirected_into_the_tree_is_not_read(tmp_path):
    write_tree(tmp_path, {"a.py": "a = 1\n", "b.md": "# b\n"})
    with open(tmp_path / "context.md", "wb") as out:
        p = subprocess.run([sys.executable, "-m", "slopfast", "aggregate", "."], cwd=tmp_path,
                           env=subprocess_env(), stdout=out, stderr=subprocess.PIPE, timeout=120)
    assert p.returncode == 0, p.stderr
    doc = (tmp_path / "context.md").read_bytes()
    assert doc.count(b"### `") == 2 and b"### `context.md`" not in doc
    # run again: context.md exists with content, and is still not read
    with open(tmp_path / "context.md", "ab") as out:
        p = subprocess.run([sys.executable, "-m", "slopfast", "aggregate", "."], cwd=tmp_path,
                           env=subprocess_env(), stdout=out, stderr=subprocess.PIPE, timeout=120)
    assert p.returncode == 0 and (tmp_path / "context.md").read_bytes() == doc * 2


def test_output_file_in_the_tree_is_not_read_even_through_a_symlink(tmp_path):
    write_tree(tmp_path, {"a.py": "a = 1\n", "ctx.md": "old\n"})
    if POSIX:
        os.symlink("ctx.md", tmp_path / "ctx-link.md")
    p = subprocess.run([sys.executable, "-m", "slopfast", "aggregate", ".", "-o", "ctx.md"], cwd=tmp_path,
                       env=subprocess_env(), capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr
    doc = (tmp_path / "ctx.md").read_bytes()
    assert doc.count(b"### `") == 1 and b"old" not in doc


# ---- start-up ---------------------------------------------------------------------------------

def test_cli_import_loads_no_ignore_machinery():
    code = ("import sys, slopfast.cli\n"
            "print(sorted(m for m in ('pathspec', 'slopfast.ignore') if m in sys.modules))\n")
    p = subprocess.run([sys.executable, "-c", code], env=subprocess_env(), capture_output=True, text=True,
                       timeout=120, cwd=tempfile.gettempdir())
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "[]"


# ---- core.ignoreCase: the ignore files' patterns fold case, as git's WM_CASEFOLD ------------

CASE_TREE = {"A.TXT": "", "b.txt": "", "Src/Main.PY": "", "Src/util.py": "", "docs/Read.MD": "", "docs/x.Log": "",
             "c1": "", "d9": "", "e_": "", "Ez": "", "F.c": "", "Gx.c": "", "Hi.c": "", "k.KEEP": "", "m/N.o": ""}
CASE_RULES = "*.txt\n*.md\n[A-C]1\n[[:upper:]]9\n\\e_\n\\Ez\n[F].c\n[!g]x.c\n[[:lower:]]i.c\nsrc/\n*.LOG\n/M/\n"


@needs_git
@pytest.mark.parametrize("ignore_case", [True, False])
def test_core_ignore_case_matches_git(tmp_path, home, ignore_case, monkeypatch):
    """With core.ignoreCase the patterns of .gitignore (and info/exclude,
    core.excludesFile) fold ASCII letters where git's wildmatch does, and not
    where it does not (a listed upper-case letter in brackets, an escaped
    one); without it they do not fold. Both walks, git the oracle."""
    root = tmp_path / "r"
    write_tree(root, {**CASE_TREE, ".gitignore": CASE_RULES})
    init_repo(root, home)
    git("config", "core.ignoreCase", "true" if ignore_case else "false", cwd=root, home=home)
    (root / ".git" / "info" / "exclude").write_text("*.keep\n")
    expected = git_files(root, home)
    folded = {b"A.TXT", b"Src/Main.PY", b"docs/Read.MD", b"d9", b"Hi.c", b"k.KEEP", b"m/N.o"}   # ignored with fold only
    unfolded = {b"F.c", b"Gx.c", b"Ez"}   # ignored without fold only: listed in brackets or escaped, unfolded
    assert not (set(expected) & (unfolded if not ignore_case else folded))
    assert set(expected) >= (unfolded if ignore_case else folded)
    for backend in ("fallback", "auto"):
        monkeypatch.setenv("SLOPFAST_BACKEND", backend)
        assert walk_files(root, hidden=True) == expected, backend


@needs_git
def test_core_ignore_case_folds_the_tools_ignore_file_not_the_options(tmp_path, home, monkeypatch):
    """.slopfastignore folds with git's setting (same syntax as .gitignore);
    --exclude and --include never fold; with --no-gitignore git's setting is
    not read."""
    root = tmp_path / "r"
    write_tree(root, {"A.TXT": "", "b.txt": "", "C.MD": "", "d.md": "", ".slopfastignore": "*.txt\n"})
    init_repo(root, home)
    git("config", "core.ignoreCase", "true", cwd=root, home=home)
    for backend in ("fallback", "auto"):
        monkeypatch.setenv("SLOPFAST_BACKEND", backend)
        assert walk_files(root) == [b"C.MD", b"d.md"]
        assert walk_files(root, exclude=["*.md"]) == [b"C.MD"]
        assert walk_files(root, include=["*.MD"]) == [b"C.MD"]
        assert walk_files(root, gitignore=False) == [b"A.TXT", b"C.MD", b"d.md"]


CASE_NAME_PARTS = ["a", "A", "b", "B", "aB", "x", "X", ".t", ".T", ".py", ".PY", "-", "[", "_", "1"]
CASE_ATOMS = ["a", "A", "b", "B", "ab", "AB", "x", "X", "t", "T", "*", "**", "?", "[ab]", "[AB]", "[!a]", "[!A]",
              "[a-c]", "[A-C]", "[Z-a]", "[[:upper:]]", "[[:lower:]]", "[![:upper:]]", "\\a", "\\A", "\\[", ".py",
              ".PY", "[", "_", "[_-a]", "[^-a]"]


def _case_files():
    def unique_folded(paths):   # one name per case-folded name (a case-insensitive file system's view)
        out, seen = [], set()
        for p in sorted(set(paths)):
            key = p.lower()
            if key in seen or any(q.startswith(key + b"/") or key.startswith(q + b"/") for q in seen):
                continue
            seen.add(key)
            out.append(p)
        return out

    names = st.lists(st.sampled_from(CASE_NAME_PARTS), min_size=1, max_size=3).map(lambda p: "".join(p).encode())
    dirs = st.sampled_from([b"", b"a/", b"B/", b"a/X/", b"Ab/"])
    return st.lists(st.tuples(dirs, names), min_size=1, max_size=12).map(lambda items: unique_folded(d + n for d, n in items))


def _case_rules():
    segment = st.lists(st.sampled_from(CASE_ATOMS), min_size=1, max_size=3).map("".join)
    pattern = st.tuples(st.sampled_from(["", "", "!"]), st.sampled_from(["", "/", "**/"]),
                        st.lists(segment, min_size=1, max_size=2).map("/".join), st.sampled_from(["", "", "/"]))
    return st.lists(pattern.map("".join), max_size=6).map(lambda lines: ("\n".join(lines) + "\n").encode())


_CASE_STAND_INS = [b"?", b"[[:lower:]]", b"[[:upper:]]", b"[[:alpha:]]", b"[![:lower:]]", b"[a-z]", b"[A-Z]",
                   b"[!a-z]", b"[^A-Z]", b"*"]


@st.composite
def _case_derived(draw, files: list[bytes]) -> bytes:
    """A pattern made from a file's name, character by character: kept, its
    case swapped, escaped, listed in brackets, or a class or range: the places
    where folding decides."""
    name = draw(st.sampled_from(files)).rsplit(b"/", 1)[-1]
    out = []
    for c in name:
        ch = bytes([c])
        how = draw(st.integers(0, 5))
        if how == 1:
            ch = ch.swapcase()
        elif how == 2 and ch.isalpha():
            ch = b"\\" + draw(st.sampled_from([ch, ch.swapcase()]))
        elif how == 3:
            ch = b"[" + draw(st.sampled_from([b"", b"!"])) + draw(st.sampled_from([ch, ch.swapcase()])) + b"]"
        elif how == 4:
            ch = draw(st.sampled_from(_CASE_STAND_INS))
        elif ch in b"*?[\\":
            ch = b"\\" + ch
        out.append(ch)
    return b"".join(out)


@needs_git
@settings(max_examples=int(os.environ.get("SLOPFAST_WALK_EXAMPLES", "300")) // 2, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(files=_case_files(), rules=_case_rules(), sub_rules=_case_rules(), data=st.data())
def test_generated_ignore_case_trees_match_git(files, rules, sub_rules, data, home, tmp_path_factory):
    """Mixed-case names and patterns under core.ignoreCase=true: the file set
    of both walks is git's."""
    root = Path(tempfile.mkdtemp(dir=tmp_path_factory.getbasetemp()))
    try:
        init_repo(root, home)
        git("config", "core.ignoreCase", "true", cwd=root, home=home)
        write_tree(root, {f: b"x\n" for f in files})
        derived = data.draw(st.lists(_case_derived(files), max_size=4))
        (root / ".gitignore").write_bytes(rules + b"".join(d + b"\n" for d in derived))
        tracked = data
        subdirs = sorted({f[: f.find(b"/")] for f in files if b"/" in f})
        if subdirs:
            (Path(os.fsdecode(os.path.join(os.fsencode(root), subdirs[0]))) / ".gitignore").write_bytes(sub_rules)
        track(root, home, tracked.draw(st.lists(st.sampled_from(files), max_size=2, unique=True)))
        expected = git_files(root, home)
        for backend in ("fallback", "auto"):
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv("SLOPFAST_BACKEND", backend)
                assert walk_files(root, hidden=True) == expected, (backend, files, rules, sub_rules)
    finally:
        shutil.rmtree(root)


@needs_git
@pytest.mark.parametrize("ignore_case", [True, False])
def test_core_ignore_case_looks_the_index_up_folded(tmp_path, home, ignore_case, monkeypatch):
    """A tracked file or directory renamed on disk by case only: with
    core.ignoreCase git still counts it as tracked (its index lookup folds
    case), so its rules do not leave it out; git lists it by its index name,
    the walk by the name on disk. Without the setting it is untracked, and
    left out."""
    root = tmp_path / "r"
    write_tree(root, {"Notes.LOG": "n\n", "Build/keep.txt": "k\n", "Build/new.txt": "x\n", "a.txt": "a\n"})
    init_repo(root, home)
    git("config", "core.ignoreCase", "true" if ignore_case else "false", cwd=root, home=home)
    track(root, home, [b"Notes.LOG", b"Build/keep.txt"])
    (root / ".gitignore").write_text("*.log\nbuild/\n")
    os.rename(root / "Notes.LOG", root / "NOTES.log")
    os.rename(root / "Build", root / "BUILD")
    expected = git_files(root, home)
    for backend in ("fallback", "auto"):
        monkeypatch.setenv("SLOPFAST_BACKEND", backend)
        got = walk_files(root, hidden=True)
        if ignore_case:
            assert got == [b".gitignore", b"BUILD/keep.txt", b"NOTES.log", b"a.txt"], backend
            assert sorted(p.lower() for p in got) == sorted(p.lower() for p in expected)
        else:   # git also lists the index's names, missing on disk here
            assert got == [b".gitignore", b"BUILD/keep.txt", b"BUILD/new.txt", b"a.txt"], backend
            assert expected == sorted(got + [b"Build/keep.txt", b"Notes.LOG"])
