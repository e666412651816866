"""What the command pays on every run: `import slopfast.cli` (and `import
slopfast`) load no module that only some calls need, and a whole
`slopfast aggregate` run loads none of the modules it once did without
needing them. Figures with `python -X importtime` are in
docs/benchmarks-cli.md ("Start-up", bench/bench_startup.py); this checks the
rule on module sets, not on timings."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

import slopfast
from conftest import require_native, subprocess_env

# each is imported where it is used: ctypes when the library loads, subprocess
# for the subprocess transport, json/hashlib/platform/tempfile for wisdom,
# msgspec, markdown-it-py and tiktoken by their ops (pathlib, loaded only for paths shown
# to people, is not checked: an editable install's import hook loads it first)
LATER = ["ctypes", "subprocess", "json", "hashlib", "platform", "tempfile", "msgspec", "markdown_it", "tiktoken"]


@pytest.mark.parametrize("module", ["slopfast", "slopfast.cli"])
def test_import_loads_nothing_it_does_not_need(module):
    code = f"import sys; import {module}; print(' '.join(m for m in {LATER!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env(), cwd="/")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == []


def test_import_from_the_repository_root_finds_the_fallbacks():
    """The checkout's slopfast/ shadows an install when Python starts in the
    repository root; its fallbacks/ (beside it) must still be found."""
    root = __import__("pathlib").Path(__file__).resolve().parent.parent
    code = "import slopfast, slopfast.fallbacks.md_outline as m; print(slopfast.__file__, m.__file__)"
    env = {k: v for k, v in subprocess_env().items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=root)
    assert out.returncode == 0, out.stderr
    package, fallback = out.stdout.split()
    assert package == str(root / "slopfast" / "__init__.py") and fallback == str(root / "fallbacks" / "md_outline.py")


# What a whole `slopfast aggregate` run (full mode, the markdown document, a
# directory in a git work tree with a .gitignore and a pyproject.toml without
# [tool.slopfast]) does not import: typing (its NamedTuples are
# slopfast._named's, its hints under TYPE_CHECKING), tomllib (only for a
# pyproject.toml that names slopfast), json and tempfile (the wisdom file is
# text, renamed into place by slopfast._cache_file), contextlib
# (dispatch.observe and cli.backend_env are classes),
# the transports and parsers it does not use, and what the fallbacks
# of other modes and formats need, shutil (argparse's help formatter
# imports it for the terminal's width: cli._help_width), and argparse with
# gettext and locale (cli._quick_aggregate_args reads such a command line).
# `re` the console script imports anyway; the fallback's patterns compile on
# first use.
NOT_IN_AGGREGATE = [
    "typing", "tomllib", "json", "tempfile", "subprocess", "pathlib", "datetime", "hashlib", "platform", "contextlib",
    "shutil", "argparse", "gettext", "locale",
    "inspect", "dataclasses", "ast", "msgspec", "markdown_it", "tiktoken", "importlib.util",
    "slopfast.fallbacks.md_outline", "slopfast.fallbacks.py_skeleton", "slopfast.md_outline",
    "slopfast.py_skeleton", "slopfast.snapshot", "slopfast.bench", "slopfast.doctor",
]

# main() runs as the console script runs it, then names every module loaded
_RUN = ("import sys; from slopfast.cli import main; code = main(sys.argv[1:]); "
        "print(' '.join(sorted(sys.modules))); sys.exit(code)")


def _aggregate_modules(tmp_path, backend: str, *args: str, wisdom: str = "off") -> set[str]:
    tree = tmp_path / "tree"
    (tree / "src").mkdir(parents=True)
    (tree / "src" / "a.py").write_text("def f():\n    return 1\n")
    (tree / "README.md").write_text("# title\n\ntext\n")
    (tree / "build.log").write_text("left out\n")
    (tree / ".gitignore").write_text("*.log\n")
    (tree / "pyproject.toml").write_text('[project]\nname = "tree"\n')
    (tree / ".git").mkdir()
    (tree / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    out = tmp_path / "out.md"
    # -S: no site, so no editable install's import hook (it loads pathlib, re,
    # contextlib and more before slopfast); the test's sys.path is PYTHONPATH
    env = subprocess_env(SLOPFAST_BACKEND=backend, SLOPFAST_WISDOM=wisdom)
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(slopfast.__file__)) + os.pathsep + env["PYTHONPATH"]
    p = subprocess.run([sys.executable, "-S", "-c", _RUN, "aggregate", str(tree), "-o", str(out), *args],
                       capture_output=True, text=True, env=env, cwd=str(tmp_path))
    assert p.returncode == 0, p.stderr
    assert b"### `" in out.read_bytes() and b"left out" not in out.read_bytes()   # it ran, with git's rules
    return set(p.stdout.split())


@pytest.mark.parametrize("backend", ["native", "fallback", "auto"])
def test_aggregate_run_loads_only_what_it_needs(tmp_path, backend):
    if backend == "native":
        require_native()
    modules = _aggregate_modules(tmp_path, backend)
    assert "slopfast.ignore" in modules and "threading" in modules   # the walk ran, beside the build
    assert [m for m in NOT_IN_AGGREGATE if m in modules] == []


def test_auto_reads_and_writes_its_wisdom_without_json(tmp_path):
    require_native()
    wisdom = tmp_path / "wisdom.txt"
    for run in ("first", "second"):
        (tmp_path / run).mkdir()
        modules = _aggregate_modules(tmp_path / run, "auto", wisdom=str(wisdom))
        assert wisdom.exists() and [m for m in NOT_IN_AGGREGATE if m in modules] == []


# A counting run (--tokens) once the ranks are in the cache: no typing, no
# OpenSSL (hashlib: the cached ranks are checked by CRC-32), no gzip (only a
# .gz rank file needs it), no tiktoken on the native path.
NOT_IN_COUNTING = ["typing", "hashlib", "_hashlib", "gzip", "tiktoken", "json", "tempfile"]


def test_counting_run_loads_only_what_it_needs(tmp_path, monkeypatch):
    require_native()
    monkeypatch.delenv("SLOPFAST_TIKTOKEN_RANKS", raising=False)   # the cached ranks, as after first use
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "first").mkdir()
    first = _aggregate_modules(tmp_path / "first", "native", "--tokens")
    assert "hashlib" in first            # the rank file was read and checked once, and its blob cached
    modules = _aggregate_modules(tmp_path, "native", "--tokens")
    assert "slopfast.tokens" in modules
    assert [m for m in NOT_IN_COUNTING if m in modules] == []


def test_aggregate_run_check_can_fail(tmp_path):
    """The check above sees what a run loads: the summary mode's parsers show."""
    modules = _aggregate_modules(tmp_path, "fallback", "--mode", "summary")
    assert "markdown_it" in modules and "slopfast.fallbacks.md_outline" in modules


def test_named_tuple_makes_what_typing_makes():
    """slopfast._named.NamedTuple, typing's stand-in at run time, makes the same class."""
    import typing

    from slopfast import _named

    def make(base):
        class Point(base):
            """A point."""
            x: int
            y: int = 0
            label: "str | None" = None

            def norm1(self) -> int:
                return abs(self.x) + abs(self.y)

            @property
            def origin(self) -> bool:
                return self.x == self.y == 0
        return Point

    ours, theirs = make(_named.NamedTuple), make(typing.NamedTuple)
    for name in ("_fields", "_field_defaults", "__doc__", "__qualname__", "__module__", "__mro__"):
        a, b = getattr(ours, name), getattr(theirs, name)
        assert (a if name != "__mro__" else [c.__name__ for c in a]) == (b if name != "__mro__" else [c.__name__ for c in b])
    assert list(ours.__annotations__) == list(theirs.__annotations__) == ["x", "y", "label"]
    p, q = ours(3, -4), theirs(3, -4)
    assert repr(p) == repr(q) and p == q and p.norm1() == q.norm1() == 7 and not p.origin and ours(0).origin
    assert p._replace(y=1) == (3, 1, None) and ours._make([1, 2, "a"]).label == "a" and p._asdict() == q._asdict()
    with pytest.raises(TypeError, match="Non-default namedtuple field b cannot follow default field a"):
        class Bad(_named.NamedTuple):
            a: int = 0
            b: int
    with pytest.raises(AttributeError, match="Cannot overwrite NamedTuple attribute _replace"):
        class Worse(_named.NamedTuple):
            a: int

            def _replace(self):
                pass


# ---- [tool.slopfast]: tomllib only for a pyproject.toml that can hold it ------------------

# every way TOML can write the key tool.slopfast (or a table that may hold it)
HOLDS_CONFIG = [
    "[tool.slopfast]\nmode = 'summary'\n",
    "[ tool . slopfast ]\nmode = 'summary'\n",
    "[\"tool\".'slopfast']\nmode = 'summary'\n",
    "[tool]\nslopfast = { mode = 'summary' }\n",
    "[tool]\nslopfast.mode = 'summary'\n",
    "  [ 'tool' ]  \n\"slopfast\" = {mode = \"summary\"}\n",
    "tool.slopfast.mode = 'summary'\n",
    "tool = { slopfast = { mode = 'summary' } }\n",
    "\"tool\" = {slopfast = {mode = 'summary'}}\n",
    "[\"t\\u006fol\".slopfast]\nmode = 'summary'\n",
    "[project]\nname = 'x'\n[tool.other]\ny = 2\n[tool.slopfast]\nmode = 'summary'\n",
]
# files that name slopfast but cannot hold [tool.slopfast]
NAMES_ONLY = [
    "[project]\nname = 'slopfast-user'\ndependencies = ['slopfast>=0.1']\n",
    "[project.scripts]\nslopfast = 'slopfast.cli:main'\n[tool.setuptools]\npackages = ['slopfast']\n",
    "[tool.pytest.ini_options]\naddopts = '-p slopfast'\n",
]


@pytest.mark.parametrize("text", HOLDS_CONFIG + NAMES_ONLY)
def test_config_read_as_tomllib_reads_it(tmp_path, text):
    """read_config gives what tomllib finds in [tool.slopfast], whether it parses or not."""
    tomllib = pytest.importorskip("tomllib")   # Python 3.11+
    from slopfast import cli

    (tmp_path / "pyproject.toml").write_text(text)
    expected = tomllib.loads(text).get("tool", {}).get("slopfast", {})
    assert (expected != {}) == (text in HOLDS_CONFIG)
    values, warnings = cli.read_config(str(tmp_path / "pyproject.toml"))
    assert (values, warnings) == ({"mode": expected["mode"]} if expected else {}, [])


def test_config_naming_slopfast_only_is_not_parsed(tmp_path):
    """This project's own pyproject.toml names slopfast: `slopfast aggregate lib` in the
    checkout does not import tomllib (one that holds [tool.slopfast] does)."""
    pytest.importorskip("tomllib")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = ("import sys; from slopfast import cli; print(cli.read_config(sys.argv[1]), 'tomllib' in sys.modules)")
    for path, seen in ((os.path.join(root, "pyproject.toml"), "({}, []) False"),
                       (str(tmp_path / "pyproject.toml"), "({'mode': 'summary'}, []) True")):
        (tmp_path / "pyproject.toml").write_text(HOLDS_CONFIG[0])
        p = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True, env=subprocess_env())
        assert p.returncode == 0, p.stderr
        assert p.stdout.strip() == seen


@pytest.mark.parametrize("columns", [None, "0", "50", "x", "200"])
def test_help_width_is_what_argparse_would_take(columns, monkeypatch):
    import shutil

    from slopfast import cli
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    assert cli._help_width() == shutil.get_terminal_size().columns - 2
