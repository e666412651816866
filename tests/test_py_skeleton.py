"""Python skeletons: native (lib/py_skeleton.c, a lexical scanner) == fallback
(fallbacks/py_skeleton.py: `ast`, and the scanner's rules in Python where ast
cannot build the module), byte for byte and error for error, on this
machine's whole CPython standard library, on mutants of it, on
hypothesis-generated modules and on hand-written fixtures; every skeleton of
source ast accepts itself parses. `strict=True` as docs/python-skeleton.md
states it."""
from __future__ import annotations

import ast
import functools
import sysconfig
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import slopfast
from slopfast import native
from slopfast.errors import PipelineError
from slopfast.fallbacks import py_skeleton as fb
from slopfast.py_skeleton import SkeletonError, summarise_python
from slopfast.wire import Input

STDLIB = Path(sysconfig.get_paths()["stdlib"])
requires_native = pytest.mark.skipif(not native.available(), reason=f"native path unavailable: {native.load_error()}")


def run_native(data: bytes, full=(), signatures=()) -> bytes:
    params = {}
    if full:
        params["full"] = "\n".join(full)
    if signatures:
        params["signatures"] = "\n".join(signatures)
    return native.run([("py_skeleton", params)], [Input(b"<source>", data)])[0]


def native_or_error(data: bytes, full=(), signatures=()) -> bytes | str:
    """The skeleton, or the error's "line N: why" as a str."""
    try:
        return run_native(data, full, signatures)
    except PipelineError as exc:
        assert exc.code == 7 and exc.op == "py_skeleton", exc
        return exc.detail


def fallback_or_error(data: bytes, full=(), signatures=()) -> bytes | str:
    try:
        return fb.skeleton(data, full, signatures)
    except fb.SkeletonSyntaxError as exc:
        return str(exc)


def scanner_or_error(data: bytes, full=(), signatures=()) -> bytes | str:
    """The fallback's port of the scanner alone (what the fallback answers
    where ast cannot build the module)."""
    try:
        return fb.scan_skeleton(fb._source(data)[0], fb._names(full), fb._names(signatures))
    except fb.SkeletonSyntaxError as exc:
        return str(exc)


def both(source, *, full=(), signatures=(), strict=False, monkeypatch):
    """summarise_python's result (or the exception) under each forced backend."""
    out = []
    for backend in ("native", "fallback"):
        monkeypatch.setenv("SLOPFAST_BACKEND", backend)
        try:
            out.append(summarise_python(source, full=full, signatures=signatures, strict=strict))
        except Exception as exc:  # noqa: BLE001 - compared below
            out.append(exc)
    monkeypatch.delenv("SLOPFAST_BACKEND")
    return out


def same(source, *, full=(), signatures=(), monkeypatch) -> str:
    """Both paths give the same text, and it parses; returns it."""
    nat, fall = both(source, full=full, signatures=signatures, monkeypatch=monkeypatch)
    assert isinstance(fall, str), fall
    assert nat == fall
    ast.parse(fall)
    return fall


def errors(source, *, strict=False, monkeypatch) -> tuple[str, str]:
    """Both paths raise SkeletonError; returns (native message, fallback message)."""
    nat, fall = both(source, strict=strict, monkeypatch=monkeypatch)
    assert isinstance(nat, SkeletonError), nat
    assert isinstance(fall, SkeletonError), fall
    return str(nat), str(fall)


# ---- (a) the whole standard library -------------------------------------------

def stdlib_files() -> list[Path]:
    """Every .py file under the stdlib directory (test/, lib2to3/ and the
    rest), without site-packages: installed third-party code is not the
    standard library."""
    out = []
    for path in STDLIB.rglob("*.py"):
        rel = path.relative_to(STDLIB).parts
        if rel[0] in ("site-packages", "dist-packages") or not path.is_file():
            continue
        out.append(path)
    return sorted(out)


@pytest.fixture(scope="module")
def stdlib_results():
    """(path, data, native result, fallback result) per stdlib file, each path
    run once per file: one pass of the fallback over the stdlib takes a few
    seconds, so the assertions below share it."""
    if not native.available():
        pytest.skip(f"native path unavailable: {native.load_error()}")
    rows = []
    with warnings.catch_warnings():   # invalid escapes in test data files
        warnings.simplefilter("ignore")
        for path in stdlib_files():
            data = path.read_bytes()
            rows.append((path, data, native_or_error(data), fallback_or_error(data)))
    return rows


def test_stdlib_is_big_enough(stdlib_results):
    assert len(stdlib_results) > 500
    parts = {p.relative_to(STDLIB).parts[0] for p, *_ in stdlib_results}
    assert {"test", "asyncio", "json"} <= parts
    assert "site-packages" not in parts


def test_stdlib_native_equals_fallback(stdlib_results):
    """Every file, the ones ast rejects included: the same skeleton or the same error."""
    mismatches = [str(p) for p, _, n, f in stdlib_results if n != f]
    assert not mismatches, f"{len(mismatches)} files differ: {mismatches[:20]}"


def test_stdlib_scanner_port_equals_ast(stdlib_results):
    """The fallback's port of the scanner, on files ast accepts (a sample: it
    runs at about 2 MB/s), gives the ast skeleton: the three implementations
    agree."""
    sample = [(p, d, f) for p, d, _, f in stdlib_results[::7] if isinstance(f, bytes)]
    assert len(sample) > 200
    mismatches = [str(p) for p, d, f in sample if scanner_or_error(d) != f]
    assert not mismatches, mismatches[:20]


def test_stdlib_skeletons_parse(stdlib_results):
    bad = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path, data, _, out in stdlib_results:
            if isinstance(out, bytes) and parses(data):
                try:
                    ast.parse(out)
                except SyntaxError as exc:
                    bad.append(f"{path}: {exc}")
    assert not bad, bad[:20]


def test_stdlib_rejected_files(stdlib_results):
    """Files ast rejects (lib2to3's and test/'s Python 2 and bad-syntax files):
    the scanner's verdict on both paths, a best-effort skeleton for some
    (Python 2 `print "x"`), the same error for the others; strict=True raises
    on both."""
    rejected = [(p, d, n, f) for p, d, n, f in stdlib_results if not parses(d)]
    assert rejected, "this stdlib has no invalid files (lib2to3 and test/ normally do)"
    assert any(isinstance(f, bytes) for *_, f in rejected) and any(isinstance(f, str) for *_, f in rejected)
    for path, data, nat, fall in rejected:
        assert nat == fall, path
        with pytest.raises(SkeletonError):
            summarise_python(data, strict=True)


MUTATIONS = [b"\n", b" ", b"\t", b"(", b")", b":", b"'", b'"', b"\\\n", b";", b"#", b"=", b"\r", b"if x:\n",
             b"else:", b"@d\n", b"def f(): pass\n", b"async ", b"class C: x=1\n", b'"""', b"f'{", b"}'"]


def test_stdlib_mutants(stdlib_results):
    """Stdlib files with lines deleted, swapped or spliced (seeded): both paths
    agree on every mutant (skeleton or error); wherever ast accepts it, the
    skeleton parses."""
    import random

    rng = random.Random(20261128)
    small = [d for _, d, _, f in stdlib_results if isinstance(f, bytes) and len(d) < 16_000]
    checked, bad = 0, []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(3000):
            lines = rng.choice(small).split(b"\n")
            for _ in range(rng.randint(1, 3)):
                i = rng.randrange(len(lines))
                op = rng.random()
                if op < 0.3 and len(lines) > 1:
                    del lines[i]
                elif op < 0.6:
                    j = rng.randrange(len(lines))
                    lines[i], lines[j] = lines[j], lines[i]
                else:
                    k = rng.randint(0, len(lines[i]))
                    lines[i] = lines[i][:k] + rng.choice(MUTATIONS) + lines[i][k:]
            data = b"\n".join(lines)
            want = fallback_or_error(data)
            if native_or_error(data) != want:
                bad.append(data)
            if isinstance(want, bytes) and parses(data):
                checked += 1
                if not parses(want):
                    bad.append(data)
    assert checked > 300
    assert not bad, bad[:3]


# ---- (b) generated modules ---------------------------------------------------

NAMES = st.sampled_from(["a", "b", "f", "g", "x", "y", "Foo", "Bar", "_p", "données", "λ"])

STRING = st.sampled_from([
    '"s"', "'s'", '"):"', "'#'", '"\\""', "'''t'''", '"""t\n"""', 'r"\\d"', "b'b'", 'u"u"',
    'f"{x}"', "f'{x!r:>{w}}'", 'f"{ {1: 2}[1] }"', "f'{d[\"k\"]}'", 'f"{{lit}} {x:{w}.{p}}"',
    'f"""{a + \'b\'}\n"""', "rf'{x}\\d'", 'F"{x=}"', "'a' 'b'", '("a"\n "b")',
])
VALUE = st.one_of(
    STRING,
    st.sampled_from(["1", "0x1F", "1.5e3", "None", "[1, (2,), {3: 4}]", "{'a': [1, ')']}", "(\n    1,\n    2,\n)",
                     "lambda q: q", "lambda: (yield)", "x if y else z", "a[1:2]", "-1", "[i for i in range(3)]",
                     "(n := 3)", "{**d}", "not x", "a.b.c(1, k=2)"]),
)
DOCSTRING = st.sampled_from([
    '"""Doc."""', "'''Doc.'''", '"Doc."', "'Doc.'", 'r"""Raw \\d."""', "u'''Uni.'''", 'R"R"', 'U"U"',
    '"""Multi\n\nline: with "quotes" and {braces}\n"""', '("Paren"\n    "cat")', '"a" \'b\'',
    'b"not a docstring"', 'f"not {a} docstring"', '"""Doc."""; x = 1',
])
COMMENT = st.sampled_from(["", "  # c", "  # 'quote: (", "\t# def f():", "  # \"\"\""])
DECORATOR = st.sampled_from(["@d", "@d()", "@d(1, ')')", "@a.b[0]", "@(lambda f: f)", "@d  # note"])
PARAMS = st.sampled_from([
    "", "self", "a, b=1", "a, /, b, *, c", "*args, **kwargs", "a: int = 1, b: str = ')'",
    "a={'k': [1, 2]}, b=(1, ':')", "x=f'{y}'", "\n    a,\n    b: 'str' = \"):\",\n", "a,\\\n        b",
    "a=lambda: 1", "a=[\n    1,\n]",
])
RETURNS = st.sampled_from(["", " -> int", " -> 'X'", " -> dict[str, int]", " -> (\n    int\n)"])
BASES = st.sampled_from(["", "()", "(Base)", "(Base, metaclass=Meta)", "(A, B, **kw)", "(\n    Base,\n    metaclass=M,\n)",
                         "(Generic[T])"])


@st.composite
def simple_stmt(draw, names) -> str:
    n = draw(names)
    kind = draw(st.integers(0, 12))
    if kind == 0:
        return f"{n} = {draw(VALUE)}"
    if kind == 1:
        return f"{n}: int = {draw(VALUE)}"
    if kind == 2:
        return f"{n}: 'T'"
    if kind == 3:
        return f"{n} += {draw(VALUE)}"
    if kind == 4:
        return draw(st.sampled_from(["import os", "import os.path as p", "from . import x", "from a import (b,\n    c)",
                                     "from __future__ import annotations", "import a, b"]))
    if kind == 5:
        return f"print({draw(VALUE)})"
    if kind == 6:
        return draw(st.sampled_from(["pass", "del x", "assert x, 'm'", "raise E", "global g", "...", "x"]))
    if kind == 7:
        return f"{n} = \\\n    {draw(VALUE)}"
    if kind == 8:
        return f"{n}.attr = {n}[0] = {draw(VALUE)}"
    if kind == 9:
        return f"{draw(simple_stmt(names))}; {draw(simple_stmt(names))}"
    if kind == 10:
        return f"{n} = {draw(VALUE)}{draw(COMMENT)}"
    if kind == 11:
        return draw(st.sampled_from([f"f(a=1, b={draw(VALUE)})", f"\\\n{n} = 1", "\\\n\\\nimport os"]))
    return f"x == {draw(VALUE)}"


def simple_line(draw, names) -> str:
    """A simple statement, or simple statements joined by `;`."""
    return draw(simple_stmt(names))


def indent_block(lines: list[str], unit: str) -> list[str]:
    """Indent a block's lines; continuation lines inside brackets or strings
    keep their text (they are part of one logical line), which only matters
    for the first physical line of each statement, so indent them all."""
    return [unit + line if line else line for line in lines]


@st.composite
def block(draw, depth: int, names) -> list[str]:
    """Statements (each a list of physical lines) of one block."""
    count = draw(st.integers(1, 4))
    out: list[str] = []
    for i in range(count):
        choice = draw(st.integers(0, 9 if depth > 0 else 1))
        if choice <= 1:
            out += simple_line(draw, names).split("\n")
        elif choice == 2:
            out += draw(funcdef(depth - 1, names))
        elif choice == 3:
            out += draw(classdef(depth - 1, names))
        elif choice == 4:
            out += draw(if_block(depth - 1, names))
        elif choice == 5:
            out += draw(try_block(depth - 1, names))
        elif choice == 6:
            unit = draw(UNIT)
            head = draw(st.sampled_from(["for i in x:", "while x:", "with a as (b, c):", "async with a:",
                                         "match x:", "for (i,\n     j) in x:"]))
            inner = draw(block(depth - 1, names))
            if head == "match x:":
                inner = ["case 1:"] + indent_block(inner, unit) + ["case _:", unit + "pass"]
            out += head.split("\n") + indent_block(inner, unit)
        elif choice == 7:
            out.append(draw(st.sampled_from(["# comment", "", "    # odd comment indent", "\t# tab comment"])))
            out += simple_line(draw, names).split("\n")
        elif choice == 8:
            out += draw(ONE_LINERS).split("\n")
        else:
            out += simple_line(draw, names).split("\n")
    return out


ONE_LINERS = st.sampled_from([
    "def f(): return 1", "class C: pass", "class C: x = 1; y = 2", "async def g(a=')'): await a", "if x: y = 1",
    "def h(): 'doc'; return", "class D(E): 'doc'", "def k(): pass  # c", "if a: pass\nelse: b = 2",
    "try: import a\nexcept: a = None", '@d\nclass E: """x"""; y: int = 2', "if a: import b\nelif c: pass\nelse: d = 1",
    "def m(): \\\n    return 1", "class F: x = 1;", "while x: y = 1",
])
UNIT = st.sampled_from(["    ", "  ", "\t", "        ", " \t"])


@st.composite
def funcdef(draw, depth: int, names) -> list[str]:
    decos = draw(st.lists(DECORATOR, max_size=2))
    asyn = draw(st.sampled_from(["", "async "]))
    head = f"{asyn}def {draw(names)}({draw(PARAMS)}){draw(RETURNS)}:{draw(COMMENT)}"
    unit = draw(UNIT)
    body = []
    if draw(st.booleans()):
        body.append(draw(DOCSTRING))
    body += draw(block(max(depth, 0), names)) if depth >= 0 else ["return 1"]
    if draw(st.integers(0, 5)) == 0 and head.endswith(":"):
        one = draw(st.sampled_from([" return 1", " 'doc'", " x = 1; return x"]))
        return decos + head.split("\n")[:-1] + [head.split("\n")[-1] + one]
    return decos + head.split("\n") + indent_block("\n".join(body).split("\n"), unit)


@st.composite
def classdef(draw, depth: int, names) -> list[str]:
    decos = draw(st.lists(DECORATOR, max_size=2))
    head = f"class {draw(names)}{draw(BASES)}:{draw(COMMENT)}"
    unit = draw(UNIT)
    body = []
    if draw(st.booleans()):
        body.append(draw(DOCSTRING))
    body += draw(block(max(depth, 0), names)) if depth >= 0 else ["x = 1"]
    return decos + head.split("\n") + indent_block("\n".join(body).split("\n"), unit)


@st.composite
def if_block(draw, depth: int, names) -> list[str]:
    unit = draw(UNIT)
    out = draw(st.sampled_from(["if TYPE_CHECKING:", "if x:  # c", "if (a and\n    b):", "if a and \\\n   b:"])).split("\n")
    out += indent_block(draw(block(max(depth, 0), names)), unit)
    for _ in range(draw(st.integers(0, 2))):
        out.append(draw(st.sampled_from(["elif y:", "elif (z):"])))
        out += indent_block(draw(block(max(depth, 0), names)), unit)
    if draw(st.booleans()):
        out.append(draw(st.sampled_from(["else:", "else:  # e"])))
        out += indent_block(draw(block(max(depth, 0), names)), unit)
    return out


@st.composite
def try_block(draw, depth: int, names) -> list[str]:
    unit = draw(UNIT)
    out = ["try:"] + indent_block(draw(block(max(depth, 0), names)), unit)
    handlers = draw(st.integers(0, 2))
    for _ in range(handlers):
        out.append(draw(st.sampled_from(["except ImportError:", "except (A, B) as e:", "except:", "except E as e:  # c"])))
        out += indent_block(draw(block(max(depth, 0), names)), unit)
    if handlers and draw(st.booleans()):
        out.append("else:")
        out += indent_block(draw(block(max(depth, 0), names)), unit)
    if not handlers or draw(st.booleans()):
        out.append("finally:")
        out += indent_block(draw(block(max(depth, 0), names)), unit)
    return out


@st.composite
def modules(draw) -> bytes:
    lines: list[str] = []
    if draw(st.booleans()):
        lines.append(draw(DOCSTRING))
    lines += draw(block(3, NAMES))
    if draw(st.booleans()):
        lines += draw(block(3, NAMES))
    text = "\n".join(lines)
    end = draw(st.sampled_from(["\n", "", "\n\n", "\n# trailing\n"]))
    text += end
    data = text.encode("utf-8")
    if draw(st.booleans()):
        data = data.replace(b"\n", b"\r\n")
    if draw(st.integers(0, 3)) == 0:
        data = b"\xef\xbb\xbf" + data
    return data


@functools.lru_cache(maxsize=None)
def parses(data: bytes) -> bool:
    """Does ast build this module? (Cached: the stdlib tests ask per file.)"""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse(fb.prepare(data).decode("utf-8"))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


def defined_names(data: bytes) -> list[str]:
    """Qualified names of the module's defs and classes (and some unknown ones)."""
    out = ["nope", "Foo.nope"]

    def walk(body, quals):
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                q = quals + (node.name,)
                out.append(".".join(q))
                if isinstance(node, ast.ClassDef):
                    walk(node.body, q)
            elif isinstance(node, (ast.If, ast.Try)):
                walk(node.body + node.orelse + getattr(node, "finalbody", []) +
                     [s for h in getattr(node, "handlers", []) for s in h.body], quals)

    walk(ast.parse(fb.prepare(data).decode("utf-8")).body, ())
    return out


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(data=modules(), pick=st.data())
@requires_native
def test_generated_modules(data, pick):
    assume(parses(data))
    want = fb.skeleton(data)
    assert run_native(data) == want
    ast.parse(want)
    names = defined_names(data)
    full = pick.draw(st.lists(st.sampled_from(names), max_size=3))
    sigs = pick.draw(st.lists(st.sampled_from(names), max_size=3))
    want = fb.skeleton(data, full, sigs)
    assert run_native(data, full, sigs) == want
    ast.parse(want)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("defclasimport =:()[]{}'\"\\#\n\t ;@.,fr1x")), max_size=80))
@requires_native
def test_generated_noise(text):
    """Random token soup: both paths agree on everything (skeleton or error);
    where ast accepts it, the skeleton parses."""
    data = text.encode("utf-8")
    nat = native_or_error(data)
    assert nat == fallback_or_error(data)
    if parses(data):
        ast.parse(nat)


# ---- (c) hand-written fixtures (docs/python-skeleton.md) ----------------------

EXAMPLE = '''"""Module doc."""
import os
from typing import (
    Any,
)

X: int = 1
print(X)


@decorator(")")
class Shape(Base, metaclass=Meta):
    """A shape."""

    sides = 0

    def area(self,
             scale: float = 1.0) -> float:  # the area
        """Area."""
        def helper():
            return 2
        return 0.0

    class Inner:
        def go(self): pass


def main(argv=None):
    """Entry."""
    return 0


if TYPE_CHECKING:
    from x import Y
else:
    Y = None

try:
    import fast
except ImportError:
    fast = None

for i in range(3):
    def loop_def(): pass
'''

EXAMPLE_SKELETON = '''"""Module doc."""
import os
from typing import (
    Any,
)
X: int = 1
@decorator(")")
class Shape(Base, metaclass=Meta):
    """A shape."""
    sides = 0
    def area(self,
             scale: float = 1.0) -> float:
        """Area."""
        ...
    class Inner:
        def go(self):
            ...
def main(argv=None):
    """Entry."""
    ...
if TYPE_CHECKING:
    from x import Y
else:
    Y = None
try:
    import fast
except ImportError:
    fast = None
'''

AREA_FULL = '''    def area(self,
             scale: float = 1.0) -> float:  # the area
        """Area."""
        def helper():
            return 2
        return 0.0
'''

AREA_SKELETON = '''    def area(self,
             scale: float = 1.0) -> float:
        """Area."""
        ...
'''


def test_example_default(backends_same):
    assert backends_same(EXAMPLE) == EXAMPLE_SKELETON


@pytest.mark.parametrize(
    "full, signatures, replace",
    [
        (["Shape.area"], [], [(AREA_SKELETON, AREA_FULL)]),
        ([], ["Shape.area"], [(AREA_SKELETON, AREA_SKELETON.replace('        """Area."""\n', ""))]),
        (["Shape.area"], ["Shape.area"], [(AREA_SKELETON, AREA_FULL)]),          # both: full wins
        ([], ["main"], [('def main(argv=None):\n    """Entry."""\n', "def main(argv=None):\n")]),
        (["main"], [], [('def main(argv=None):\n    """Entry."""\n    ...\n',
                         'def main(argv=None):\n    """Entry."""\n    return 0\n')]),
        (["Shape.Inner.go"], [], [("        def go(self):\n            ...\n", "        def go(self): pass\n")]),
        (["Shape.Inner"], [], [("    class Inner:\n        def go(self):\n            ...\n",
                                "    class Inner:\n        def go(self): pass\n")]),
        ([], ["Shape.Inner"], [("    class Inner:\n        def go(self):\n            ...\n", "    class Inner:\n        ...\n")]),
        # unknown names, unqualified member names, names in dropped blocks, non-def names: ignored
        (["nope", "area", "go", "loop_def", "helper", "Shape.area.helper", "X", "Y"], ["Shape.nope", "Inner", ""], []),
    ],
)
def test_example_selection(backends_same, full, signatures, replace):
    want = EXAMPLE_SKELETON
    for old, new in replace:
        assert old in want
        want = want.replace(old, new)
    assert backends_same(EXAMPLE, full=full, signatures=signatures) == want


def test_signatures_class_drops_members_and_docstring(backends_same):
    got = backends_same(EXAMPLE, signatures=["Shape"])
    assert '@decorator(")")\nclass Shape(Base, metaclass=Meta):\n    ...\ndef main' in got


def test_full_class_keeps_everything_through_its_last_line(backends_same):
    got = backends_same(EXAMPLE, full=["Shape"])
    start = EXAMPLE.index('@decorator(")")')
    end = EXAMPLE.index("        def go(self): pass\n") + len("        def go(self): pass\n")
    assert EXAMPLE[start:end] in got
    assert got.endswith(EXAMPLE_SKELETON[EXAMPLE_SKELETON.index("def main"):])


def test_full_as_one_string(backends_same):
    assert backends_same(EXAMPLE, full="Shape.area") == backends_same(EXAMPLE, full=["Shape.area"])


@pytest.mark.parametrize(
    "source, want",
    [
        ("", ""),
        ("\n\n   \n", ""),
        ('"""Only a docstring."""', '"""Only a docstring."""\n'),
        ("'Only.'\n", "'Only.'\n"),
        ("# one\n# two\n", ""),
        ("# one\nprint(1)\nx\n", ""),
        ('b"bytes"\n', ""),                                # not a docstring
        ('f"f-string"\n', ""),
        ('x = 1\n"""late string"""\n', "x = 1\n"),          # only the first statement
        ('"a" "b"  # c\n', '"a" "b"\n'),
        ('(\n    "paren"\n    "cat"\n)\n', '(\n    "paren"\n    "cat"\n)\n'),
        ('"""doc"""; x = 1; f()\n', '"""doc"""\nx = 1\n'),
        ("x = 1; y += 2; z: int; del x\n", "x = 1\ny += 2\nz: int\n"),
        ("x = \\\n    1\n", "x = \\\n    1\n"),
        ("f = lambda a: a\n", "f = lambda a: a\n"),
        ("f(a=1)\nx == 1\nassert x\n", ""),
        (b"\xef\xbb\xbfx = 1\n", "x = 1\n"),
        ("\ufeffx = 1\n", "x = 1\n"),
        (b'import os\r\nclass A:\r\n    """D.\r\n    """\r\n    def m(self):\r\n        return 1\r\n',
         'import os\nclass A:\n    """D.\n    """\n    def m(self):\n        ...\n'),
        (b"x = 1\ry = 2\r", "x = 1\ny = 2\n"),
        ("class C:\n\tx = 1\n\tdef m(self):\n\t\treturn 1\n", "class C:\n\tx = 1\n\tdef m(self):\n\t\t...\n"),
        ("class C:\n\tdef m(self): return 1\n", "class C:\n\tdef m(self):\n\t    ...\n"),
        ('def f(): return 1\nclass C: x = 1; y = 2\nclass D: pass\nasync def g(): "doc"; return 2\n',
         'def f():\n    ...\nclass C:\n    x = 1\n    y = 2\nclass D:\n    ...\nasync def g():\n    "doc"\n    ...\n'),
        ("class C:\n  def m(self): return 1\n", "class C:\n  def m(self):\n      ...\n"),
        ("if a: b = 1\nelif c: d()\nelse: e = 2\n", "if a:\n    b = 1\nelif c:\n    ...\nelse:\n    e = 2\n"),
        ("if a:\n    f()\nelse:\n    g()\n", ""),                                   # nothing kept: block dropped
        ("try:\n    f()\nexcept E:\n    g()\nfinally:\n    h()\n", ""),
        ("try:\n    import a\nexcept (A, B) as e:  # c\n    pass\nelse:\n    b = 1\nfinally:\n    pass\n",
         "try:\n    import a\nexcept (A, B) as e:\n    ...\nelse:\n    b = 1\nfinally:\n    ...\n"),
        ("if a:\n    def f(): pass\n", "if a:\n    def f():\n        ...\n"),
        ("if a:\n    pass\nelif b:\n    class C: pass\n", "if a:\n    ...\nelif b:\n    class C:\n        ...\n"),
        ("for i in x:\n    y = 1\nwhile x:\n    import os\nwith a:\n    z = 1\n", ""),   # dropped blocks
        ("async for i in x:\n    y = 1\nasync with a:\n    z = 1\n", ""),
        ("match x:\n    case 1:\n        y = 1\n", ""),
        ("match = 1\nmatch.x = 2\nasync_ = 3\n", "match = 1\nmatch.x = 2\nasync_ = 3\n"),
        ("def f():\n    def g():\n        x = 1\n    class C:\n        y = 2\n    z = 3\n", "def f():\n    ...\n"),
        ('def f():\n    """Doc."""\n    x = 1\n', 'def f():\n    """Doc."""\n    ...\n'),
        ("def f():\n    x = 1\n    'not doc'\n", "def f():\n    ...\n"),
        ("def f(\n    a,\n    b=')',\n) -> None:  # c\n    pass\n", "def f(\n    a,\n    b=')',\n) -> None:\n    ...\n"),
        ("def f(a,\\\n      b): pass\n", "def f(a,\\\n      b):\n    ...\n"),
        ("@a\n# between\n@b(')')\nasync def f(): pass\n", "@a\n# between\n@b(')')\nasync def f():\n    ...\n"),
        ("class C(A, metaclass=M, **kw): pass\n", "class C(A, metaclass=M, **kw):\n    ...\n"),
        ("class C:\n    x: int\n    y = z = 1\n    print(x)\n", "class C:\n    x: int\n    y = z = 1\n"),
        ("class C:\n    def m(self):\n        pass\n    m2 = m\n", "class C:\n    def m(self):\n        ...\n    m2 = m\n"),
        ("x = f'{a!r:>{w}} {{b}} {\"q\"}'\n", "x = f'{a!r:>{w}} {{b}} {\"q\"}'\n"),
        ("x = {'a': [1, (2, 3)],\n     'b': ')'}  # c\n", "x = {'a': [1, (2, 3)],\n     'b': ')'}\n"),
        ("x = 1  # comment\n", "x = 1\n"),
        ("def f():\n    return 1\n# trailing\n", "def f():\n    ...\n"),
        ("x = 1", "x = 1\n"),
    ],
)
def test_fixture(backends_same, source, want):
    assert backends_same(source) == want


@pytest.fixture
def backends_same(monkeypatch, needs_native):
    def run(source, **kw):
        return same(source, monkeypatch=monkeypatch, **kw)

    return run


# ---- (d) syntax errors ---------------------------------------------------------

@pytest.mark.parametrize(
    "source, message",
    [
        (b'x = 1\ny = "\xff"\n', "line 2: source is not valid UTF-8"),
        (b"\xef\xbb\xbf\xc3(\n", "line 1: source is not valid UTF-8"),
        (b"x = 1\r\n\xed\xa0\x80\n", "line 2: source is not valid UTF-8"),       # an encoded surrogate
        (b"x = 1\x00\n", "line 1: source code cannot contain null bytes"),
        (b"# c\n\x00", "line 2: source code cannot contain null bytes"),
        ('x = "abc\n', "line 1: unterminated string literal (detected at line 1)"),
        ("x = 'ab\\\ncd\n", "line 1: unterminated string literal (detected at line 2)"),
        ("\nx = '''abc\n\n", "line 2: unterminated triple-quoted string literal (detected at line 3)"),
        ("def f():\n    '''doc", "line 2: unterminated triple-quoted string literal (detected at line 2)"),
        ("x = (1,\n", "line 1: '(' was never closed"),
        ("x = (\n[\n", "line 2: '[' was never closed"),
        ("x = )\n", "line 1: unmatched ')'"),
        ("x = [1, 2}\n", "line 1: closing parenthesis '}' does not match opening parenthesis '['"),
        ("f(\n  x]\n", "line 2: closing parenthesis ']' does not match opening parenthesis '(' on line 1"),
        ("x = " + "(" * 300 + ")" * 300 + "\n", "line 1: too many nested parentheses"),
        ("x = 1\n  y = 2\n", "line 2: unexpected indent"),
        ("if x:\n    a = 1\n  b = 2\n", "line 3: unindent does not match any outer indentation level"),
        ("def f():\n        a\n    b\n", "line 3: unindent does not match any outer indentation level"),
    ],
)
def test_error_same_message(monkeypatch, needs_native, source, message):
    assert errors(source, monkeypatch=monkeypatch) == (message, message)
    assert errors(source, strict=True, monkeypatch=monkeypatch) == (message, message)


@pytest.mark.parametrize(
    "source, native_message, fallback_message",
    [
        ("if x:\ny = 2\n", "line 2: expected an indented block",
         "line 2: expected an indented block after 'if' statement on line 1"),
        ("def f():\n", "line 1: expected an indented block",
         "line 1: expected an indented block after function definition on line 1"),
        ("class C:\n# c\n", "line 2: expected an indented block",
         "line 2: expected an indented block after class definition on line 1"),
        ("def f()\n    pass\n", "line 1: expected ':'", "line 1: expected ':'"),
    ],
)
def test_error_scanner_message_is_shorter(monkeypatch, needs_native, source, native_message, fallback_message):
    """Documented: for a missing block the scanner's message (both paths) stops
    before CPython's "after ... on line N"; strict=True gives CPython's."""
    assert errors(source, monkeypatch=monkeypatch) == (native_message, native_message)
    assert errors(source, strict=True, monkeypatch=monkeypatch) == (fallback_message, fallback_message)


@pytest.mark.parametrize(
    "source, best_effort, fallback_message",
    [
        ("x = = 1\n", "x = = 1\n", "line 1: invalid syntax"),
        ('print "hello"\nx = 1\n', "x = 1\n", "line 1: Missing parentheses in call to 'print'. Did you mean print(...)?"),
        ("x = 1 +\n", "x = 1 +\n", "line 1: invalid syntax"),
        ("from x import\n", "from x import\n", "line 1: invalid syntax"),
        ("def f(a b): pass\n", "def f(a b):\n    ...\n", "line 1: invalid syntax"),
        ("x = (1 2)\n", "x = (1 2)\n", "line 1: invalid syntax. Perhaps you forgot a comma?"),
        ("f(**)\ny = 1\n", "y = 1\n", "line 1: invalid syntax"),
    ],
)
def test_grammar_error_inside_a_statement(monkeypatch, needs_native, source, best_effort, fallback_message):
    """Only ast sees these: both paths return the scanner's best effort; with
    strict=True both raise ast's error."""
    nat, fall = both(source, monkeypatch=monkeypatch)
    assert nat == fall == best_effort
    assert errors(source, strict=True, monkeypatch=monkeypatch) == (fallback_message, fallback_message)


@pytest.mark.parametrize(
    "source, want",
    [
        ("def f(a, a): pass\n", "def f(a, a):\n    ...\n"),
        ("class C:\n    return 1\n", "class C:\n    ...\n"),
        ("x = 1\nnonlocal x\n", "x = 1\n"),
    ],
)
def test_compile_time_errors_are_not_syntax_errors(backends_same, source, want):
    """ast.parse accepts these (only compile() rejects them): both paths give
    the skeleton, strict=True too."""
    assert backends_same(source) == want
    assert summarise_python(source, strict=True) == want


def test_strict_on_valid_source_changes_nothing(monkeypatch, needs_native):
    nat, fall = both(EXAMPLE, strict=True, monkeypatch=monkeypatch)
    assert nat == fall == EXAMPLE_SKELETON


def test_unencodable_str(monkeypatch, needs_native):
    msg = "source is not encodable as UTF-8 (character 4)"
    assert errors("x = \ud800\n", monkeypatch=monkeypatch) == (msg, msg)


def test_skeleton_error_classes():
    assert issubclass(SkeletonError, slopfast.PipelineError)
    assert issubclass(SkeletonError, ValueError)
    with pytest.raises(SkeletonError) as info:
        summarise_python("x = (", strict=True)
    assert info.value.code == 7


@requires_native
def test_native_op_error_response():
    """The raw op: a rejected source is an op failure naming the input."""
    with pytest.raises(PipelineError, match=r"py_skeleton: <source>: line 1: unmatched '\)'"):
        run_native(b"x = )\n")


# ---- (e) huge and deep input -----------------------------------------------------

def huge_module(target: int) -> bytes:
    """About 20 MB of classes and functions whose bodies are mostly a large
    string (few ast nodes per byte: the fallback's memory stays modest)."""
    unit = (
        'class C{i}(Base, metaclass=M):\n'
        '    """Class {i}: ' + "x" * 200 + '"""\n'
        '    attr = {{"k": [1, 2, ")"]}}\n'
        '    def m(self, a=1, *args, **kw) -> int:\n'
        '        """Method."""\n'
        '        for j in range(a):\n'
        '            a += j\n'
        '        table = \'\'\'' + ("row, (col), [cell], {{key}}: 'value' # not a comment\n" * 40) + '\'\'\'\n'
        '        return a\n'
        '\n'
        'def f{i}(x):\n'
        '    return x\n'
        'v{i} = f{i}(1)\n\n'
    )
    parts, size, i = [b'"""A huge module."""\nimport os\n'], 0, 0
    while size < target:
        chunk = unit.format(i=i).encode()
        parts.append(chunk)
        size += len(chunk)
        i += 1
    return b"".join(parts)


@requires_native
def test_huge_module():
    data = huge_module(20 << 20)
    assert len(data) >= 20 << 20
    want = fb.skeleton(data)
    assert run_native(data) == want
    assert want.startswith(b'"""A huge module."""\nimport os\nclass C0(Base, metaclass=M):\n')
    assert want.count(b"\n") > 0 and len(want) < len(data)


@requires_native
def test_huge_batch_of_inputs():
    """One request with many inputs: one part per input, as separate calls."""
    sources = [f"x{i} = {i}\ndef f{i}(): pass\n".encode() for i in range(2000)]
    parts = native.run([("py_skeleton", {})], [Input(b"<t>", s) for s in sources])
    assert parts == [fb.skeleton(s) for s in sources]


@pytest.mark.parametrize(
    "source, message",
    [
        ("x = " + "(" * 10_000 + ")" * 10_000 + "\n", "line 1: too many nested parentheses"),
        ("x = " + "[\n" * 10_000 + "]" * 10_000 + "\n", "line 201: too many nested parentheses"),
        ("".join(" " * i + "def f():\n" for i in range(10_000)) + " " * 10_000 + "pass\n",
         "line 101: too many levels of indentation"),
        ("".join(" " * i + "if x:\n" for i in range(10_000)) + " " * 10_000 + "y = 1\n",
         "line 101: too many levels of indentation"),
        ("".join("\t" * i + "class C:\n" for i in range(10_000)) + "\t" * 10_000 + "y = 1\n",
         "line 101: too many levels of indentation"),
    ],
)
def test_deep_nesting_errors(monkeypatch, needs_native, source, message):
    assert errors(source, monkeypatch=monkeypatch) == (message, message)


def test_deep_nesting_just_allowed(backends_same):
    source = "".join(" " * i + "if x:\n" for i in range(99)) + " " * 99 + "import os\n"
    assert backends_same(source) == source
    source = "x = " + "(" * 200 + ")" * 200 + "\n"      # CPython's limit: 200 open brackets
    assert backends_same(source) == source


@pytest.mark.parametrize(
    "source",
    [
        "x = " + "-" * 100_000 + "1\n",           # CPython's parser gives up (MemoryError / recursion)
        "x = " + "not " * 20_000 + "y\n",
    ],
)
def test_deep_expression(monkeypatch, needs_native, source):
    """Too deep for CPython's parser, invisible to the scanner: both paths
    return the statement (the scanner's verdict); strict=True raises on both.
    Never a crash."""
    nat, fall = both(source, monkeypatch=monkeypatch)
    assert nat == fall == source
    with pytest.raises(SkeletonError):
        summarise_python(source, strict=True)


def test_valid_module_too_deep_for_ast(monkeypatch, needs_native):
    """Valid Python that CPython's AST may not build (an elif chain of 5,000
    clauses: RecursionError on 3.11 and 3.12): the same skeleton on both paths,
    from the scanner's rules where ast gives up."""
    source = "if x == 0:\n    a = 0\n" + "".join(f"elif x == {i}:\n    a = {i}\n" for i in range(1, 5000))
    if not parses(source.encode()):
        with pytest.raises(SkeletonError):
            summarise_python(source, strict=True)
    nat, fall = both(source, monkeypatch=monkeypatch)
    assert nat == fall == source


# ---- (f) input types ----------------------------------------------------------------

@pytest.mark.parametrize("kind", [str, bytes, bytearray, memoryview])
def test_input_types(backends_same, kind):
    data = EXAMPLE.encode()
    source = EXAMPLE if kind is str else kind(data)
    assert backends_same(source) == EXAMPLE_SKELETON


@pytest.mark.parametrize("bad", [None, 1, 1.5, ["x = 1"], object()])
def test_bad_source_type(monkeypatch, bad):
    for backend in ("native", "fallback"):
        monkeypatch.setenv("SLOPFAST_BACKEND", backend)
        with pytest.raises(TypeError, match="source must be str or bytes"):
            summarise_python(bad)


@pytest.mark.parametrize("arg", ["full", "signatures"])
def test_bad_names(arg):
    with pytest.raises(TypeError, match=f"{arg}: names must be str"):
        summarise_python("x = 1\n", **{arg: [b"f"]})
    with pytest.raises(TypeError):
        summarise_python("x = 1\n", **{arg: 3})
    with pytest.raises(ValueError, match="line break"):
        summarise_python("x = 1\n", **{arg: ["a\nb"]})


def test_output_is_str(monkeypatch, needs_native):
    nat, fall = both(b"x = 1\n", monkeypatch=monkeypatch)
    assert nat == fall == "x = 1\n"
    assert type(nat) is str and type(fall) is str


# ---- the documented example ------------------------------------------------------

def doc_blocks() -> list[str]:
    text = (Path(__file__).resolve().parents[1] / "docs" / "python-skeleton.md").read_text(encoding="utf-8")
    return [b.split("\n", 1)[1] for b in text.split("```")[1::2]]


def test_documented_example(backends_same):
    _, source, skeleton, methods = doc_blocks()
    assert backends_same(source) == skeleton
    got = backends_same(source, full=["Circle.grow"], signatures=["Circle.area"])
    assert methods in got
    assert got == skeleton.replace(skeleton[skeleton.index("    def area"):skeleton.index("if TYPE_CHECKING")], methods)
    got = backends_same(source, signatures=["Circle"])
    assert "@dataclass(frozen=True)\nclass Circle(Shape, metaclass=Registry):\n    ...\nif TYPE_CHECKING:" in got


@pytest.mark.parametrize(
    "source, native_message, fallback_message",
    [
        ("x = $\n", "line 1: invalid character", "line 1: invalid syntax"),
        ("x = a ? b\n", "line 1: invalid character", "line 1: invalid syntax"),
        ("x = !a\n", "line 1: invalid syntax", "line 1: invalid syntax"),
        ("x = 1 \\ 2\n", "line 1: unexpected character after line continuation character",
         "line 1: unexpected character after line continuation character"),
        ("@d\nx = 1\n", "line 2: a decorator must precede def or class", "line 2: invalid syntax"),
        ("else:\n    pass\n", "line 1: invalid syntax: clause without its block", "line 1: invalid syntax"),
    ],
)
def test_scanner_own_lexical_messages(monkeypatch, needs_native, source, native_message, fallback_message):
    """Documented: errors the scanner words its own way (both paths);
    strict=True gives CPython's."""
    assert errors(source, monkeypatch=monkeypatch) == (native_message, native_message)
    assert errors(source, strict=True, monkeypatch=monkeypatch) == (fallback_message, fallback_message)


# ---- backslash continuations at the start of a line ---------------------------------

@pytest.mark.parametrize(
    "source, outcome",
    [
        ("def f():\n     \\\n   return 1\n", "def f():\n     \\\n   ...\n"),
        ("if 1:\n    x = 1\n\\\n    y = 2\n", "if 1:\n    x = 1\n\\\n    y = 2\n"),
        ("def f():\n    \\\n\n    return 1\n", "def f():\n    ...\n"),
        ("if 1:\n  x = 1\n  \\\n\\\n  y = 2\n", "if 1:\n  x = 1\n  \\\n\\\n  y = 2\n"),
        ("x = 1\n\\\n  y = 2\n", "line 3: unexpected indent"),
        ("x = 1\n  \\\ny = 2\n", "line 3: unexpected indent"),
        ("if 1:\n    x = 1\n  \\\n    y = 2\n", "line 4: unindent does not match any outer indentation level"),
        ("if 1:\n  x = 1\n    \\\n  y = 2\n", "line 4: unexpected indent"),
    ],
)
def test_continuation_at_line_start(monkeypatch, needs_native, source, outcome):
    """The indentation of a line that starts with `\\` continuations is
    CPython's: the column before the first backslash, or, when that is 0,
    counted on over the next physical line."""
    nat, fall = both(source, monkeypatch=monkeypatch)
    if isinstance(fall, SkeletonError):
        assert isinstance(nat, SkeletonError)
        assert str(nat) == str(fall) == outcome
    else:
        assert nat == fall == outcome
        ast.parse(fall)


@pytest.mark.parametrize(
    "source, full, want",
    [
        # statements of one logical line share its indentation, on any physical line
        ("import a;\\\n import b\n", (), "import a\nimport b\n"),
        ("class C:\n    x = 1;\\\n  y = 2\n", (), "class C:\n    x = 1\n    y = 2\n"),
        ("x = 1;  # c \\\ny = 2\n", (), "x = 1\ny = 2\n"),
        # a header starts at the line of its first decorator's `@`
        ("@\\\nd\ndef f(): pass\n", (), "@\\\nd\ndef f():\n    ...\n"),
        ("class C:\n    @\\\n    d\n    def f(self): pass\n", (), "class C:\n    @\\\n    d\n    def f(self):\n        ...\n"),
        ("@(\nd)\ndef f(): pass\n", (), "@(\nd)\ndef f():\n    ...\n"),
        ("@(  # see @x\n d)\nclass C: pass\n", (), "@(  # see @x\n d)\nclass C:\n    ...\n"),
        # full= keeps the definition through the end of its last logical line
        ("def f(): pass\\\n\n", ("f",), "def f(): pass\\\n\n"),
        ("def f():\n    return 1;\\\n  # c\nx = 1\n", ("f",), "def f():\n    return 1;\\\n  # c\nx = 1\n"),
        ("def f(): pass  # c \\\nx = 1\n", ("f",), "def f(): pass  # c \\\nx = 1\n"),
    ],
)
def test_backslash_continuations(backends_same, source, full, want):
    """Continuations between the statements of a line, after a decorator's
    `@`, and after a kept definition's last token: same text, and it parses."""
    assert backends_same(source, full=full) == want


@pytest.mark.parametrize(
    "source, message",
    [
        ("    \\\nx = 1", "line 2: unexpected indent"),   # CPython counts the column before the backslash
        ("  x = 1\n", "line 1: unexpected indent"),
        ("# c\n\\\n  x = 1\n", "line 3: unexpected indent"),
        ("x = 1 \\", "line 1: unexpected EOF while parsing"),
        ("x = 1;\\\n", "line 1: unexpected EOF while parsing"),
        ("if 1:\n    x = 1\n\\\n", "line 3: unexpected EOF while parsing"),
        ("x = (1, \\\n", "line 1: '(' was never closed"),
    ],
)
def test_continuation_errors(monkeypatch, needs_native, source, message):
    assert errors(source, monkeypatch=monkeypatch) == (message, message)


def test_stdlib_continuations(stdlib_results):
    """Stdlib files with backslash continuations inserted after random tokens
    and before the first token of lines (seeded): wherever ast accepts the
    result, both paths give the same skeleton (with full= on some definitions
    too), and it parses."""
    import io
    import random
    import re
    import tokenize

    rng = random.Random(20261201)
    small = [d for _, d, _, f in stdlib_results if isinstance(f, bytes) and len(d) < 12_000]
    skip = (tokenize.ENCODING, tokenize.INDENT, tokenize.DEDENT, tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT,
            tokenize.ENDMARKER)
    inserts = [b"\\\n", b" \\\n", b"\\\n    ", b"\\\n\t", b";\\\n", b"\\\n\\\n"]
    defs = re.compile(rb"^[ \t]*(?:async\s+)?(?:def|class)\s+(\w+)", re.M)
    checked, bad = 0, []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(500):
            data = rng.choice(small)
            try:
                toks = list(tokenize.tokenize(io.BytesIO(data).readline))
            except (tokenize.TokenError, SyntaxError):
                continue
            lines = data.split(b"\n")
            starts = [0]
            for line in lines:
                starts.append(starts[-1] + len(line) + 1)
            cand = []
            line_starts = (tokenize.NEWLINE, tokenize.NL, tokenize.INDENT, tokenize.DEDENT, tokenize.COMMENT)
            for a, b in zip(toks, toks[1:]):
                if b.type in skip or (a.type in skip and a.type not in line_starts):
                    continue
                if a.end[0] != b.start[0] and a.type not in line_starts:
                    continue
                text = lines[b.start[0] - 1].decode("utf-8", "surrogateescape")
                cand.append(starts[b.start[0] - 1] + len(text[: b.start[1]].encode("utf-8", "surrogateescape")))
            if not cand:
                continue
            for at in sorted(rng.sample(cand, min(len(cand), rng.randint(1, 4))), reverse=True):
                data = data[:at] + rng.choice(inserts) + data[at:]
            if not parses(data):
                continue
            full = [m.decode() for m in defs.findall(data)[:2]] if rng.random() < 0.5 else []
            checked += 1
            want = fallback_or_error(data, full)
            if native_or_error(data, full) != want:
                bad.append(data)
            elif isinstance(want, bytes):
                try:
                    ast.parse(want)
                except SyntaxError:
                    bad.append(data)
    assert checked > 200
    assert not bad, bad[:3]


@pytest.mark.parametrize(
    "source, want",
    [
        ("def f():\n    \\\nreturn 1\n", "def f():\n    \\\n...\n"),
        ("class C:\n     \\\ndef m(self):\n        return 1\n", "class C:\n     \\\ndef m(self):\n        ...\n"),
        ("class C:\n  \\\nx = 1\n", "class C:\n  \\\nx = 1\n"),
        ("if a:\n    \\\n\\\nimport os\nelse:\n  \\\n  y = 2\n", "if a:\n    \\\n\\\nimport os\nelse:\n  \\\n  y = 2\n"),
        ("\\\n@d\ndef f(): pass\n", "\\\n@d\ndef f():\n    ...\n"),
        # one-line bodies: 4 more spaces where CPython's column count stops
        ("if x:\n\t\\\nclass C: y = 1\n", "if x:\n\t\\\nclass C:\n\t    \\\ny = 1\n"),
        ("if x:\n  \\\n\\\n   class C: y = 1\n", "if x:\n  \\\n\\\n   class C:\n      \\\n\\\n   y = 1\n"),
        ("if x:\n\\\n  def f(): return 1\n", "if x:\n\\\n  def f():\n\\\n      ...\n"),
        ("def f(): pass\n", "def f():\n    ...\n"),
    ],
)
def test_continuation_lines_before_the_first_token_are_kept(backends_same, source, want):
    """What is kept of a logical line that starts with continuation-only lines
    starts with them: the skeleton counts the same columns, and parses."""
    assert backends_same(source) == want



def test_the_fallback_parses_one_source_at_a_time(monkeypatch):
    """ast.parse on two threads at once can fail in CPython 3.11 (gh-106905:
    its recursion depth is shared between threads), and --budget makes
    summaries on two threads: the fallback parses one source at a time.
    A parse that sleeps lets the other thread in, if nothing stops it."""
    import threading
    import time

    from slopfast.fallbacks import py_skeleton as fallback
    real, inside, most = ast.parse, [0], [0]

    def slow_parse(text, *args, **kw):
        inside[0] += 1
        most[0] = max(most[0], inside[0])
        time.sleep(0.005)
        try:
            return real(text, *args, **kw)
        finally:
            inside[0] -= 1

    monkeypatch.setattr(fallback.ast, "parse", slow_parse)
    source = b"def f(x):\n    '''Doc.'''\n    return x\n"
    got: list = []
    threads = [threading.Thread(target=lambda: got.extend(fallback.skeleton(source) for _ in range(10))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most[0] == 1 and len(got) == 20 and len(set(got)) == 1
