"""The C walk (the walk op, lib/walk.c; slopfast.walk_native) against the Python
walk (slopfast.walk, the oracle) and against git.

Every comparison runs both walks on the same tree with the same options and
asks for the same events (same files in the same order, the same Skipped
reasons and notes, the same Unreadable paths and errnos) and the same record
of what the rules left out (WalkOptions.left_out: the command's hints and
warnings), and, where a work tree is at hand, the file set git lists
(tests/test_walk.py's helpers and generators). Cases the C walk leaves to the
Python walk are checked to be left (dir_events answers None), never walked
differently.
"""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slopfast import walk as walk_module
from slopfast import native, walk_native, wire
from slopfast.ignore import Patterns, RuleList, parse_rule
from slopfast.walk import Found, LeftOut, Skipped, Unreadable, WalkOptions, walk

from conftest import DATA, require_native
from test_walk import (GIT, HAND_TREE, OUTSIDE_TREE, make_generated_repo, ODD_NAMES, REPO, _files, _pattern, _rules, _tree, chdir, git, git_files, hidden_free, home,  # noqa: F401
                       init_repo, needs_git, needs_posix, track, write_tree)

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the native walk is for POSIX systems")


@pytest.fixture(autouse=True)
def _native():
    require_native()


def _normal(events: list) -> list:
    out = []
    for e in events:
        if isinstance(e, Unreadable):
            out.append(("unreadable", e.path, e.error.errno))
        else:
            out.append(e)
    return out


def _left(left: LeftOut) -> tuple:
    return (left.counts, left.first, left.include_used, left.exclude_used, left.walked, left.listed)


def both(root: Path, *paths: str, expect_native: bool = True, **options) -> list:
    """The events of both walks (equal, and equal records of what was left out)."""
    got = {}
    for native in (False, True):
        left = LeftOut()
        with chdir(root):
            events = list(walk(list(paths) or ["."], WalkOptions(left_out=left, **options), native=native))
        got[native] = (_normal(events), _left(left))
    assert got[True][0] == got[False][0]
    assert got[True][1] == got[False][1]
    if expect_native:
        assert not left_to_python(root, *paths, **options), "the C walk left this tree to the Python walk"
    return got[True][0]


def left_to_python(root: Path, *paths: str, **options) -> bool:
    """Does the C walk leave one of these directory arguments to the Python walk?"""
    opts = WalkOptions(**options)
    inc = walk_module._patterns(opts.include, "--include")
    exc = walk_module._patterns(opts.exclude, "--exclude")
    with chdir(root):
        for p in list(paths) or ["."]:
            if os.path.isdir(p):
                setup = walk_module._setup(p, opts)
                if walk_native.dir_events(p, walk_module.display_prefix(p), opts, inc, exc, setup) is None:
                    return True
    return False


def files_of(events: list) -> list[bytes]:
    return [os.fsencode(e.path if hasattr(e, "path") else e[1])
            for e in events if not (isinstance(e, Skipped) and e.reason == "special")]


def same_as_git(root: Path, home: Path, *paths: str) -> None:
    expected = git_files(root, home, *paths)
    assert files_of(both(root, *paths, hidden=True)) == expected
    assert files_of(both(root, *paths)) == hidden_free(expected)


def raw_patterns(patterns: list[bytes]) -> Patterns:
    """--include/--exclude patterns as given, malformed ones too (the command refuses those)."""
    return Patterns(RuleList([parse_rule(p) for p in patterns]))


# ---- hand-made trees -----------------------------------------------------------------------

@needs_git
def test_hand_made_tree(tmp_path, home):
    root = tmp_path / "proj"
    write_tree(root, {k: v.encode("latin-1") if "\x85" in v else v for k, v in HAND_TREE.items()})
    init_repo(root, home)
    same_as_git(root, home)
    same_as_git(root, home, "src")
    same_as_git(root, home, "docs")
    both(root, "src", "docs", ".", "src/ok.py")          # several arguments: a path met twice once
    for kw in (dict(gitignore=False), dict(default_ignores=False, gitignore=False), dict(hidden=True, gitignore=False)):
        both(root, **kw)


@needs_git
def test_tracked_ignored_and_index_versions(tmp_path, home):
    for version in ("2", "3", "4"):
        root = tmp_path / f"v{version}"
        write_tree(root, {".gitignore": "*.log\nbuild/\n", "x.log": "x", "dir/a b.log": "y", "dir/c.txt": "c",
                          "build/keep.txt": "k", "build/new.txt": "n", "build/sub/t.txt": "t", "build/.gitignore": "!new.txt\n",
                          "dir/deeper/name-with-a-long-common-prefix-1.log": "1",
                          "dir/deeper/name-with-a-long-common-prefix-2.log": "2"})
        init_repo(root, home)
        track(root, home, [b"x.log", b"dir/a b.log", b"dir/deeper/name-with-a-long-common-prefix-2.log",
                           b"build/keep.txt", b"build/sub/t.txt"])
        git("update-index", f"--index-version={version}", cwd=root, home=home)
        same_as_git(root, home)
        same_as_git(root, home, "dir")
    # a damaged index: nothing is tracked, on both walks
    (root / ".git" / "index").write_bytes(b"DIRC\x00\x00\x00\x02\xff\xff\xff\xff" + bytes(100))
    both(root, hidden=True)
    (root / ".git" / "index").unlink()
    both(root, hidden=True)


@needs_git
def test_excludes_file_info_exclude_and_above_the_argument(tmp_path, home):
    root = tmp_path / "proj"
    write_tree(root, {"a.txt": "a", "b.txt": "b", "sub/c.txt": "c", "sub/deep/d.txt": "d", "sub/.gitignore": "d.txt\n",
                      ".gitignore": "sub/deep/e*\n", "sub/deep/e.md": "e", ".slopfastignore": "*.md\n",
                      "sub/.slopfastignore": "!e.md\n"})
    init_repo(root, home)
    (root / ".git" / "info").mkdir(exist_ok=True)
    (root / ".git" / "info" / "exclude").write_text("a.txt\n")
    (home / "excl").write_text("b.txt\n")
    git("config", "core.excludesFile", str(home / "excl"), cwd=root, home=home)
    try:
        same_as_git(root, home)
        both(root, "sub/deep")
        both(root / "sub", ".")
        both(root / "sub" / "deep", "..")
    finally:
        (home / "excl").unlink()


@needs_git
def test_include_exclude_and_what_was_left_out(tmp_path, home):
    root = tmp_path / "proj"
    write_tree(root, {"src/a.py": "a", "src/b.md": "b", "src/gen/c.py": "c", "docs/x.md": "x", "t/test_a.py": "t",
                      ".env": "e", "node_modules/m.js": "m", ".gitignore": "*.log\n", "z.log": "z"})
    init_repo(root, home)
    cases = [
        dict(include=["*.py"]), dict(exclude=["gen/"]), dict(include=["src/"], exclude=["*.md", "!b.md"]),
        dict(include=["*.rs"]), dict(exclude=["./src"]), dict(include=["docs/*.md", "t/"], exclude=["nothing"]),
        dict(exclude=[b"[z-a]", b"[[:nope:]]", b"bad\\", b"!"]), dict(include=[b"[", b"*"]),
    ]
    for kw in cases:
        kw = {k: raw_patterns(v) if isinstance(v[0], bytes) else v for k, v in kw.items()}
        both(root, **kw)
        both(root, "src", ".", **kw)
        both(root, gitignore=False, **kw)


def test_outside_a_work_tree_default_ignores(tmp_path, home):
    if any((p / ".git").exists() for p in tmp_path.parents):
        pytest.skip("the temp directory lies inside a git work tree")
    write_tree(tmp_path, OUTSIDE_TREE)
    both(tmp_path, hidden=True)
    both(tmp_path)
    both(tmp_path, default_ignores=False, hidden=True)
    xdg = home / ".config" / "git"
    xdg.mkdir(parents=True, exist_ok=True)
    (xdg / "ignore").write_text("a.py\n")
    try:
        assert b"a.py" not in files_of(both(tmp_path))
    finally:
        shutil.rmtree(xdg)


# ---- corpora and this repository ---------------------------------------------------------------

@pytest.mark.parametrize("sub", ["", "wire", "commonmark", "rust-book"])
def test_tests_data(sub):
    root = DATA / sub if sub else DATA
    if not root.is_dir():
        pytest.skip(f"no {root}")
    both(REPO, os.path.relpath(root, REPO))
    both(REPO, os.path.relpath(root, REPO), hidden=True, gitignore=False)
    both(root, ".")


@needs_git
def test_this_repository(home):
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    for attempt in range(5):      # others may be editing the tree
        try:
            events = both(REPO, hidden=True)
            break
        except AssertionError:
            if attempt == 4:
                raise
    assert b"slopfast/walk.py" in files_of(events)
    expected = [p for p in git_files(REPO, home) if os.path.lexists(os.path.join(os.fsencode(REPO), p))]
    assert files_of(events) == expected or attempt < 4
    both(REPO, "lib", "slopfast", "tests/data")
    both(REPO, "/" + str(REPO).lstrip("/") + "/lib")      # an absolute argument: absolute shown paths


# ---- generated trees -------------------------------------------------------------------------

@needs_git
@settings(max_examples=int(os.environ.get("SLOPFAST_WALK_EXAMPLES", "150")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(tree=_tree(), data=st.data())
def test_generated_trees(tree, data, home, tmp_path_factory):
    files, ignores, exclude, excludes_file, tracked = tree
    root = Path(tempfile.mkdtemp(dir=tmp_path_factory.getbasetemp()))
    try:
        make_generated_repo(root, home, tree)
        expected = git_files(root, home)
        assert files_of(both(root, hidden=True)) == expected
        assert files_of(both(root)) == hidden_free(expected)
        for d, content in ignores.items():     # the tool's own rules (not git's: they drop tracked files too)
            if data.draw(st.booleans()):
                with open(os.path.join(os.fsencode(root), d, b".slopfastignore"), "wb") as fh:
                    fh.write(content[::-1].replace(b"\n", b"", 1) + b"\n")
                both(root, hidden=True)
        # --include / --exclude from the same grammar (malformed ones too)
        lines = [p for p in (exclude or b"").split(b"\n") if p]
        inc = [p for p in (excludes_file or b"").split(b"\n") if p]
        kw = {}
        if lines:
            kw["exclude"] = raw_patterns(lines)
        if inc:
            kw["include"] = raw_patterns(inc)
        if kw:
            both(root, hidden=data.draw(st.booleans()), gitignore=data.draw(st.booleans()), **kw)
        subdirs = sorted({f[: f.find(b"/")] for f in files if b"/" in f})
        if subdirs:
            both(root, os.fsdecode(data.draw(st.sampled_from(subdirs))), hidden=True)
    finally:
        shutil.rmtree(root)


@settings(max_examples=int(os.environ.get("SLOPFAST_WALK_EXAMPLES", "150")) * 2, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(files=_files(), data=st.data())
def test_generated_patterns_without_git(files, data, tmp_path_factory):
    """The matcher on its own (no git, no index): generated names, and generated and
    derived patterns as --exclude, --include, .gitignore and .slopfastignore lines, in
    and out of the work tree's rules (gitignore on and off), hidden on and off."""
    root = Path(tempfile.mkdtemp(dir=tmp_path_factory.getbasetemp()))
    try:
        for f in files:
            p = os.path.join(os.fsencode(root), f)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "wb") as fh:
                fh.write(b"x\n")
        dirs = sorted({f[: f.rfind(b"/") + 1] for f in files} | {b""})
        paths = sorted(set(files) | {d.rstrip(b"/") for d in dirs if d})
        for d in data.draw(st.lists(st.sampled_from(dirs), max_size=3, unique=True)):
            name = data.draw(st.sampled_from([b".gitignore", b".slopfastignore"]))
            with open(os.path.join(os.fsencode(root), d, name), "wb") as fh:
                fh.write(data.draw(_rules(paths, d)))
        kw = {}
        for option in ("exclude", "include"):
            lines = [p for p in data.draw(_rules(paths, b"")).split(b"\n") if p]
            if lines and data.draw(st.booleans()):
                kw[option] = raw_patterns(lines)
        both(root, hidden=data.draw(st.booleans()), gitignore=data.draw(st.booleans()),
             default_ignores=data.draw(st.booleans()), **kw)
    finally:
        shutil.rmtree(root)


# ---- symlinks, special files, odd names, depth, permissions ----------------------------------------

@needs_posix
def test_symlinks_in_and_out_of_the_tree(tmp_path):
    secret = tmp_path / "home" / ".ssh" / "id_rsa"
    secret.parent.mkdir(parents=True)
    secret.write_text("PRIVATE KEY\n")
    repo = tmp_path / "repo"
    write_tree(repo, {"a.txt": "a\n", "docs/inner.txt": "inner\n", ".env": "SECRET=1\n", "d/x.txt": "x"})
    os.symlink(secret, repo / "notes.txt")
    os.symlink("../docs/inner.txt", repo / "docs" / "up-and-back.txt")
    os.symlink("inner.txt", repo / "docs" / "same-dir.txt")
    os.symlink("../../home/.ssh/id_rsa", repo / "docs" / "relative-out.txt")
    os.symlink(".env", repo / "env.txt")
    os.symlink("d", repo / "dlink")
    os.symlink("nowhere", repo / "dangling")
    os.symlink("loop", repo / "loop")
    os.mkfifo(repo / "fifo")
    os.symlink("fifo", repo / "fifo-link")
    events = both(repo)
    reasons = {e.path: getattr(e, "reason", "found") for e in events if hasattr(e, "path")}
    assert reasons["notes.txt"] == "symlink-outside" and reasons["env.txt"] == "symlink-hidden"
    assert reasons["dlink"] == "directory-symlink" and reasons["fifo"] == "special"
    assert [e for e in events if isinstance(e, Found) and e.path == "docs/same-dir.txt"][0].content == b"inner\n"
    both(repo, hidden=True)
    both(repo, "docs", "dlink")                 # a directory symlink named: walked (its target is the tree)
    with chdir(repo):                           # --follow-symlinks: the Python walk's
        assert not walk_native.usable(WalkOptions(follow_symlinks=True), None)
        with pytest.raises(walk_native.NativeWalkUnavailable):
            list(walk(["."], WalkOptions(follow_symlinks=True), native=True))


def test_the_c_walk_runs_on_posix_and_windows_only(monkeypatch):
    """Windows walks natively too (its calls are tested under wine:
    tests/test_cross_build.py); any other os.name walks in Python."""
    require_native()
    for name, native_walk in (("posix", True), ("nt", True), ("java", False)):
        monkeypatch.setattr(walk_native.os, "name", name)
        assert (walk_native.why_not(WalkOptions()) is None) == native_walk, name


@needs_posix
def test_special_files_and_fifo_ignore_files(tmp_path):
    import socket
    write_tree(tmp_path, {"a.txt": "a\n", "sub/b.txt": "b\n"})
    os.mkfifo(tmp_path / "fifo")
    for name in (".gitignore", ".slopfastignore", "sub/.gitignore"):
        os.mkfifo(tmp_path / name)
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(tmp_path / "sock"))
    except OSError:
        pass
    try:
        events = both(tmp_path, hidden=True)
        assert Skipped("fifo", "special", "not a regular file (a FIFO)") in events
        both(tmp_path)
    finally:
        sock.close()


@needs_posix
def test_check_files_on_both(tmp_path):
    write_tree(tmp_path, {"a.txt": "a\n", "bin.dat": b"\0\1\2", "big.txt": "x" * 5000, "u16.txt": b"\xff\xfeh\x00"})
    os.symlink("a.txt", tmp_path / "link.txt")
    both(tmp_path, check_files=True, max_file_size=4096)


@needs_git
@needs_posix
def test_odd_names(tmp_path, home):
    root = tmp_path / "proj"
    root.mkdir()
    try:
        for name in ODD_NAMES + [b"\x01ctl", b"a\rb", b"\xc3\x28", b"sp ace/"[:-1]]:
            with open(os.path.join(os.fsencode(root), name), "wb") as f:
                f.write(b"x\n")
            d = os.path.join(os.fsencode(root), b"d " + name.replace(b"\n", b"_"))
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, name), "wb") as f:
                f.write(b"x\n")
    except OSError as exc:
        pytest.skip(f"this file system refuses such names: {exc}")
    (root / ".gitignore").write_bytes(b"\\#hash\n\\!bang\n*\xe9*\nd\\ new_line.txt/\n[[:cntrl:]]*\n")
    init_repo(root, home)
    same_as_git(root, home)
    both(root, os.fsdecode(b"d caf\xe9.txt"), hidden=True, gitignore=False)


def test_deep_nesting(tmp_path):
    path = tmp_path
    for i in range(100):
        path = path / f"d{i % 7}"
    path.mkdir(parents=True)
    (path / "deep.txt").write_text("x")
    (tmp_path / ".gitignore").write_text("d3/d4/d5/\n!d3/d4/d5/d6/\n")
    both(tmp_path)
    # past the C walk's depth: left to the Python walk, which gives the same events
    for i in range(60):
        path = path / "e"
    path.mkdir(parents=True)
    (path / "deeper.txt").write_text("y")
    assert left_to_python(tmp_path)
    both(tmp_path, expect_native=False, gitignore=False)


@needs_posix
@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads any directory")
def test_unreadable_directories(tmp_path):
    write_tree(tmp_path, {"a/x.txt": "x", "b/y.txt": "y", "c/z.txt": "z"})
    os.chmod(tmp_path / "b", 0)
    os.chmod(tmp_path / "c", stat.S_IRUSR)        # listable, not searchable
    try:
        events = both(tmp_path)
        assert ("unreadable", "b", 13) in events
        both(tmp_path, "b", "a")
    finally:
        os.chmod(tmp_path / "b", 0o755)
        os.chmod(tmp_path / "c", 0o755)


_AS_NOBODY = r"""
import os, sys
from slopfast import dispatch, ignore, native, walk as W, walk_native, wire
import slopfast.fallbacks.aggregate
native.available(); dispatch.backend_setting()
os.setgid(65534); os.setuid(65534)      # root reads every directory; nobody does not
out = []
for native_ in (True, False):
    left = W.LeftOut()
    events = W.walk(sys.argv[1:], W.WalkOptions(check_files=False, left_out=left), native=native_)
    out.append(([(type(e).__name__, e.path, getattr(getattr(e, "error", None), "errno", None), getattr(e, "reason", None))
                 for e in events], left.counts, left.walked))
print(repr(out[0]) if out[0] == out[1] else "DIFFER " + repr(out))
"""


@needs_posix
@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root, to become nobody")
def test_unreadable_directories_as_nobody():
    """As root, the unreadable directories of a tree walked as the user nobody."""
    root = Path(tempfile.mkdtemp(dir="/tmp"))
    try:
        os.chmod(root, 0o755)
        write_tree(root, {"a/x.txt": "x", "b/y.txt": "y", "c/z.txt": "z", "d/e/f.txt": "f", ".gitignore": "*.log\n"})
        os.chmod(root / "b", 0)
        os.chmod(root / "c", stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)      # listable, not searchable
        os.chmod(root / "d" / "e", 0)
        env = dict(os.environ, PYTHONPATH=str(REPO))
        for args in ([str(root)], [str(root / "d"), str(root / "a")], [str(root / "b")]):
            p = subprocess.run([sys.executable, "-c", _AS_NOBODY, *args], env=env, capture_output=True, text=True,
                               timeout=120)
            assert p.returncode == 0, p.stderr
            assert not p.stdout.startswith("DIFFER"), p.stdout
        assert "13" in p.stdout    # the last one: b itself cannot be listed
    finally:
        for d in ("b", "c", "d/e"):
            os.chmod(root / d, 0o755)
        shutil.rmtree(root)


@needs_git
def test_nested_repository_is_left_to_the_python_walk(tmp_path, home):
    root = tmp_path / "outer"
    write_tree(root, {".gitignore": "*.txt\n", "a.py": "a", "inner/b.txt": "b", "inner/c.py": "c",
                      "inner/.gitignore": "*.py\n"})
    init_repo(root, home)
    init_repo(root / "inner", home)
    assert left_to_python(root)
    both(root, hidden=True, expect_native=False)
    both(root, "inner", hidden=True)               # the nested repository as the argument: its own
    both(root, gitignore=False, hidden=True)       # git's rules off: nothing nested to read


def test_the_command_on_both_walks(tmp_path):
    write_tree(tmp_path, {"a.py": "a = 1\n", "b.md": "# b\n", ".gitignore": "*.log\n", "c.log": "c", "sub/d.txt": "d"})
    outs = []
    for backend in ("fallback", "native"):
        env = dict(os.environ, SLOPFAST_BACKEND=backend, PYTHONPATH=str(REPO))
        p = subprocess.run([sys.executable, "-m", "slopfast", "aggregate", ".", "-v", "--exclude", "nomatch"],
                           cwd=tmp_path, env=env, capture_output=True, timeout=120)
        assert p.returncode == 0, p.stderr
        outs.append((p.stdout, [l for l in p.stderr.splitlines() if b" s; " not in l]))
    assert outs[0] == outs[1]


# ---- the op's parameters -----------------------------------------------------------------------

def test_malformed_parameters_are_code_3(tmp_path):
    from slopfast import native, wire
    from slopfast.errors import PipelineError
    (tmp_path / "a.txt").write_text("a")
    good = walk_native._layer(0, RuleList([parse_rule(b"*.log")], b"", "x"))
    for params, message in [({"layers": good[:-1]}, "parameter layers"), ({"layers": b"\x04" + good[1:]}, "parameter layers"),
                            ({"layers": good + walk_native._layer(2, RuleList([], b"", None)) * 2}, "parameter layers"),
                            ({"hash_len": "21"}, "hash_len"), ({"hidden": "2"}, "hidden"), ({"git": "x"}, "git")]:
        with pytest.raises(PipelineError) as info:
            native.run([("walk", params)], [wire.Input(os.fsencode(tmp_path))])
        assert info.value.code == 3 and message in str(info.value)
    # no parameters: the directory's files, nothing left out but hidden names
    part, files = native.run([("walk", {})], [wire.Input(os.fsencode(tmp_path)), wire.Input(b"/nonexistent/x")])
    assert wire.decode_records(part) == [(1, 6, b"", 0, 0, b"", b""), (1, 3, b".", 2, 0, b"", b"")]
    assert files == b"a.txt\0"


def test_a_library_without_the_walk_op_walks_in_python(tmp_path, monkeypatch):
    from slopfast import native
    from slopfast.errors import PipelineError
    write_tree(tmp_path, {"a.txt": "a", "b/c.txt": "c"})
    expected = both(tmp_path)

    def old_library(ops, inputs):
        raise PipelineError("unknown op 'walk'", code=2)

    monkeypatch.setattr(native, "run", old_library)
    with chdir(tmp_path):
        assert _normal(list(walk(["."], WalkOptions()))) == expected


def test_the_walk_gives_back_each_directory_s_listing_when_it_leaves_it(tmp_path):
    """The walk holds the listings (and ignore files) of the directories it is
    in, not of every directory it has walked: 10,000 directories with 200-byte
    names (4.5 MB of listings and names, were they kept) walk within 1 MiB."""
    long = "d" * 196
    for i in range(40):
        for j in range(250):
            os.makedirs(tmp_path / f"{i:02d}" / f"{long}{j:03d}")
    (tmp_path / "00" / ".slopfastignore").write_text("*.log\n" * 2000)   # a layer, popped with its directory
    (tmp_path / "39" / f"{long}249" / "last.txt").write_text("x")
    request = wire.encode_request([("walk", {"hidden": "1"})], [wire.Input(os.fsencode(tmp_path))])
    got = native.run_blob_opts(request, memory_limit=1 << 20)
    assert got.code == 0, got.message
    assert wire.decode_records(got.parts[0]) == [(2, 6, b"", 0, 0, b"", b"")]   # walked, after two files
    assert got.parts[1] == b"00/.slopfastignore\0" + os.fsencode(f"39/{long}249/last.txt") + b"\0"


def test_the_walk_s_file_list_is_freed_before_its_answer_is_encoded(tmp_path):
    """The file list is built in an arena of its own, freed once it is copied
    into the answer's part, so the encoded answer is made beside one copy of
    the list, not two. The memory cap counts each arena's work (not the
    encoding): 20,000 files with 200-byte names walk within 2.2 times their
    list (1.6 is enough); the walk that built the list in the call's arena
    needed 3 times."""
    long = "f" * 190
    for i in range(40):
        (tmp_path / f"d{i:02d}").mkdir()
        for j in range(500):
            (tmp_path / f"d{i:02d}" / f"{long}{j:03d}").touch()
    request = wire.encode_request([("walk", {})], [wire.Input(os.fsencode(tmp_path))])
    whole = native.run_blob_opts(request)
    assert whole.code == 0 and whole.parts[1].count(b"\0") == 20_000
    capped = native.run_blob_opts(request, memory_limit=int(2.2 * len(whole.parts[1])))
    assert capped == whole, (capped.code, capped.message)
