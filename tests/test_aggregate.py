"""build_markdown: format, fence safety, inputs, and native == fallback byte for byte."""
from __future__ import annotations

import errno
import os
import sysconfig
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

import slopfast
from slopfast.fallbacks import aggregate as fb
from slopfast.fallbacks import summary as fb_summary
from slopfast.wire import Input

from conftest import DATA

pytestmark = pytest.mark.each_backend

CORPUS = sorted((DATA / "rust-book").rglob("*.md"))


def both(backends, *args, **kwargs):
    native, fallback = backends(lambda: slopfast.build_markdown(*args, as_bytes=True, **kwargs))
    assert native == fallback
    return native


# ---- the format -----------------------------------------------------------

def test_section_shape_and_separator(backends):
    doc = both(backends, [("src/a.py", "x = 1\n"), ("README", b"hi")])
    assert doc == b"### `src/a.py`\n\n```py\nx = 1\n\n```\n\n---\n\n### `README`\n\n```\nhi\n```"


def test_no_items_gives_empty_document(backends):
    assert both(backends, []) == b""


def test_empty_content(backends):
    assert both(backends, [("e.txt", "")]) == b"### `e.txt`\n\n```txt\n\n```"


def test_fence_outgrows_closing_runs(backends):
    content = "a\n```\nb\n  `````  \nc ``````` d\n"
    doc = both(backends, [("x.md", content)])
    assert doc.startswith(b"### `x.md`\n\n``````md\n")   # 5 could close, 7 is inline


def test_fence_ignores_runs_that_cannot_close(backends):
    content = "    ````\n```` x\n\t````\n"
    assert both(backends, [("x", content)]).split(b"\n")[2] == b"```"


def test_fence_sees_cr_and_crlf_lines(backends):
    assert both(backends, [("x", "a\r````\rb")]).split(b"\n")[2] == b"`````"
    assert both(backends, [("x", "a\r\n````\r\nb")]).split(b"\n")[2] == b"`````"


@pytest.mark.parametrize(
    "path, heading",
    [
        ("a b.py", "### `a b.py`"),
        ("we`ird.py", "### ``we`ird.py``"),
        ("`start", "### `` `start ``"),
        (" both ", "### `  both  `"),
        ("line\nbreak", "### `line\\x0abreak`"),     # shown: control bytes as \xNN, a backslash as \\
        ("line break", "### `line break`"),
        ("back\\slash", "### `back\\\\slash`"),
        (b"bad\xff.rs", "### `bad\\xff.rs`"),
        ("ünï/cødé.rs", "### `ünï/cødé.rs`"),
        ("\ta ", "### `\\x09a `"),
        (" a ", "### `  a  `"),                 # padded: CommonMark strips one space each side
        ("\r`\n", "### ``\\x0d`\\x0a``"),
        ("`", "### `` ` ``"),
        ("\n", "### `\\x0a`"),
        ("", "### (empty path)"),                  # plain text: no path's code span looks like it
    ],
)
def test_odd_paths(backends, path, heading):
    assert both(backends, [(path, "")]).decode().split("\n")[0] == heading


def _shown_path(path: bytes) -> str:
    """What a reader should see: the path with control bytes, DEL, U+FFFE/F
    and bytes outside UTF-8 as \\xNN and a backslash doubled (valid UTF-8)."""
    shown = fb.shown_path(path)
    assert fb.unshow_path(shown) == path
    return shown.decode("utf-8")


any_paths = st.one_of(
    st.binary(max_size=40),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=30).map(lambda t: t.encode("utf-8")),
    st.lists(st.sampled_from(["`", "``", " ", "\n", "\r", "\r\n", "\t", "a", "#", "\\", "*", "&amp;", "<b>", "\0", "é"]),
             max_size=12).map(lambda parts: "".join(parts).encode("utf-8")),
)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=any_paths)
def test_heading_shows_any_path(backends, path):
    """markdown-it is the oracle: the heading holds one code span whose content
    is the path as shown; an empty path is the plain text (empty path)."""
    doc = both(backends, [(path, "")])
    tokens = MarkdownIt("commonmark").parse(doc.decode("utf-8", "replace"))
    assert tokens[0].type == "heading_open" and tokens[0].tag == "h3"
    children = [(c.type, c.content) for c in tokens[1].children]
    if path:
        assert children == [("code_inline", _shown_path(path))]
    else:
        assert children == [("text", "(empty path)")]


@pytest.mark.parametrize(
    "path, tag",
    [("a.py", "py"), ("a.tar.gz", "gz"), (".bashrc", ""), ("notes.", ""), ("dir.d/file", ""), ("a.b`c", "")],
)
def test_language_tag_is_the_suffix(backends, path, tag):
    assert both(backends, [(path, "")]).decode().split("\n")[2] == "```" + tag


def test_languages_mapping(backends):
    doc = both(backends, [("a.py", ""), ("b.rs", "")], languages={"py": "python", ".rs": "rust"})
    assert b"```python\n" in doc and b"```rust\n" in doc


def test_content_bytes_are_kept_exactly_with_raw(backends):
    raw = b"\xff\xfe bad utf-8 \x00 nul \r\n crlf \t tab"
    doc = both(backends, [("bin.dat", raw)], raw=True)
    assert raw in doc
    assert "\ufffd\ufffd bad utf-8" in slopfast.build_markdown([("bin.dat", raw)], raw=True)


def test_content_is_text_by_default(backends):
    raw = b"\xfe bad utf-8 \x00 nul \r\n crlf \t tab \xe2\x82"
    doc = both(backends, [("bin.dat", raw)])
    assert b"\xef\xbf\xbd bad utf-8 \x00 nul \r\n crlf \t tab \xef\xbf\xbd\n" in doc
    doc.decode("utf-8")


# ---- items ----------------------------------------------------------------

class Obj:
    def __init__(self, path, content):
        self.path, self.content = path, content


def test_item_forms_agree(backends, tmp_path):
    f = tmp_path / "f.py"
    f.write_text("print(1)\n")
    forms = [str(f), f, (str(f), "print(1)\n"), {"path": str(f), "content": b"print(1)\n"}, Obj(str(f), "print(1)\n")]
    docs = {both(backends, [item]) for item in forms}
    assert len(docs) == 1


def test_bad_item_type():
    with pytest.raises(TypeError):
        slopfast.build_markdown([42])


def test_missing_file_raises_input_error(backends, tmp_path):
    missing = str(tmp_path / "nope.py")
    errs = backends(lambda: pytest.raises(slopfast.InputError, slopfast.build_markdown, [missing]).value)
    for err in errs:
        assert isinstance(err, OSError) and err.errno == errno.ENOENT and err.filename == missing


def test_directory_item_is_unreadable(backends, tmp_path):
    errs = backends(lambda: pytest.raises(slopfast.InputError, slopfast.build_markdown, [str(tmp_path)]).value)
    assert {e.errno for e in errs} == {errno.EISDIR}


def test_skip_leaves_out_unreadable_files(backends, tmp_path):
    good = tmp_path / "g.txt"
    good.write_text("ok")
    doc = both(backends, [str(tmp_path / "missing"), str(good)], errors="skip")
    assert doc == f"### `{good}`\n\n```txt\nok\n```".encode()
    for result in backends(lambda: slopfast.aggregate.build([str(tmp_path / "missing"), str(good)])):
        assert [p for p, _ in result.skipped] == [str(tmp_path / "missing")]


def test_summary_mode_generic(backends):
    text = "".join(f"line {i}\n" for i in range(30))
    doc = both(backends, [("long.txt", text), ("short.txt", "a\nb")], mode="summary")
    assert b"line 19\n... 10 more lines\n```" in doc
    assert doc.endswith(b"```txt\na\nb\n```")


def test_per_item_mode(backends):
    text = "".join(f"{i}\n" for i in range(25))
    doc = both(backends, [("a.txt", text, "summary"), {"path": "b.txt", "content": text, "mode": "full"}])
    assert b"... 5 more lines" in doc and b"24\n\n```" in doc


def _body(doc: bytes) -> bytes:
    """The body of a one-section document."""
    head, _, rest = doc.partition(b"\n")       # "### `PATH`"
    fence_line = rest.split(b"\n", 2)[1]
    fence = fence_line[: len(fence_line) - len(fence_line.lstrip(b"`"))]
    return rest.split(b"\n", 2)[2][: -len(fence) - 1]


MARKDOWN = "Intro\n\n# Title\n\ntext\n\nSub\n---\n\n```\n# not a heading\n```\n### Deep `code`\n"
PYTHON = '''"""Module doc."""


class A(Base):
    """A doc."""
    x = 1

    def f(self, a,
          b=2) -> int:
        return a + b


def main():
    print(os.name)
'''


@pytest.mark.parametrize("mode", ["summary", "skeleton"])
def test_python_files_get_their_skeleton(backends, mode):
    for path in ("m.py", "stubs/m.pyi", "M.PY"):
        doc = both(backends, [(path, PYTHON)], mode=mode)
        assert _body(doc) == slopfast.summarise_python(PYTHON).encode()
    assert b"return a + b" not in doc and b"def f(self, a,\n          b=2) -> int:\n" in doc


def test_markdown_files_get_their_outline_in_summary_mode(backends):
    for path in ("README.md", "doc/x.markdown", "NOTES.Md"):
        doc = both(backends, [(path, MARKDOWN)], mode="summary")
        assert _body(doc) == slopfast.summarise_markdown(MARKDOWN).encode()
    assert _body(doc) == b"- Title\n  - Sub\n    - Deep `code`\n"


def test_markdown_without_headings_gets_the_generic_summary(backends):
    text = "".join(f"para {i}\n\n" for i in range(15))
    doc = both(backends, [("x.md", text)], mode="summary")
    assert _body(doc) == fb_summary.generic_summary(text.encode())
    assert doc.endswith(b"para 9\n\n... 10 more lines\n```")


def test_skeleton_mode_keeps_other_files_whole(backends):
    text = "".join(f"line {i}\n" for i in range(30))
    for path in ("a.txt", "a.md", "Makefile"):
        assert _body(both(backends, [(path, text)], mode="skeleton")) == text.encode()


def test_python_the_scanner_rejects_gets_the_generic_summary(backends):
    for bad in ("def f(:\n    pass\n", "x = 'unterminated\n", "if x:\n  a\n    b\n", b"x = 1\n\xff\n", "a\0b\n"):
        raw = bad.encode() if isinstance(bad, str) else bad
        for mode in ("summary", "skeleton"):
            assert _body(both(backends, [("bad.py", bad)], mode=mode, raw=True)) == fb_summary.generic_summary(raw)
            both(backends, [("bad.py", bad)], mode=mode)


def test_python_only_ast_rejects_gets_the_scanners_skeleton(backends):
    """Grammar errors inside a statement, Python 2, and valid Python too deep
    for CPython's parser: the scanner's verdict (a skeleton) on both paths, so
    the document does not depend on which path ran."""
    deep = "if x == 0:\n    a = 0\n" + "".join(f"elif x == {i}:\n    a = {i}\n" for i in range(1, 5000))
    for source in ("x = = 1\ndef f():\n    pass\n", 'import os\nprint "hello"\ndef main():\n    print os.name\n',
                   "x = " + "-" * 100_000 + "1\n", deep):
        want = slopfast.summarise_python(source).encode()
        for mode in ("summary", "skeleton"):
            assert _body(both(backends, [("old.py", source)], mode=mode)) == want


def test_tiers_some_files_full_the_rest_skeletons(backends):
    items = [("app/main.py", PYTHON, "full"), ("app/util.py", PYTHON), ("README.md", MARKDOWN, "full")]
    doc = both(backends, items, mode="skeleton")
    sections = doc.split(b"\n\n---\n\n")
    assert _body(sections[0]) == PYTHON.encode()
    assert _body(sections[1]) == slopfast.summarise_python(PYTHON).encode()
    assert _body(sections[2]) == MARKDOWN.encode()


def test_stdlib_sample_in_skeleton_mode(backends):
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    paths = [str(p) for p in sorted(stdlib.glob("*.py"))[:80]]
    doc = both(backends, paths, mode="skeleton")
    assert doc.count(b"\n\n---\n\n") == len(paths) - 1


# ---- corpus and generated inputs ---------------------------------------------

def test_corpus_from_paths(backends):
    doc = both(backends, [str(p) for p in CORPUS])
    fences = [t for t in MarkdownIt("commonmark").parse(doc.decode()) if t.type == "fence"]
    assert [t.content for t in fences] == [_normalise(p.read_bytes() + b"\n") for p in CORPUS]


def test_corpus_inline_with_summary(backends):
    items = [(str(p.relative_to(DATA)), p.read_bytes()) for p in CORPUS]
    both(backends, items)
    both(backends, items, mode="summary")


def _is_python(src: str) -> bool:
    try:
        compile(src, "<generated>", "exec", dont_inherit=True)
    except SyntaxError:
        return False
    return True


paths = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30)
contents = st.one_of(
    st.binary(max_size=300),
    st.lists(
        st.sampled_from(["```", "````", "`", "   ```", "    ````", "x", " ", "\t", "\r\n", "\n", "\r", "~~~", "é"]),
        max_size=40,
    ).map("".join),
)
items = st.lists(st.tuples(paths, contents), max_size=6)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=items, mode=st.sampled_from(["full", "summary"]))
def test_generated_items_native_equals_fallback(backends, items, mode):
    both(backends, items, mode=mode)


md_lines = st.sampled_from(["# A", "## B *c*", "Title", "===", "---", "> # q", "- # li", "    # code", "```", "<div>",
                            "", "text", "[x]: /u", "\t# tab", "***", "1. x", "  lazy"])
py_modules = st.lists(st.sampled_from(["import os", "x = 1", "def f(a,\n      b):", "    return a", "class C(B):",
                                       "    \"\"\"doc\"\"\"", "    y: int = 2", "    def g(self): return 1", "",
                                       "@dec", "async def h():", "    pass", "# comment", "if x:", "    z = 3"]),
                      max_size=25).map("\n".join).filter(_is_python)
typed_items = st.lists(st.one_of(
    st.tuples(st.sampled_from(["a.md", "b.markdown", "c.MD"]), st.lists(md_lines, max_size=20).map("\r\n".join)),
    st.tuples(st.sampled_from(["m.py", "n.pyi"]), py_modules),
    st.tuples(st.sampled_from(["t.txt", "u"]), contents),
), max_size=6)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=typed_items, mode=st.sampled_from(["summary", "skeleton"]))
def test_generated_markdown_and_python_items(backends, items, mode):
    both(backends, items, mode=mode)


def _normalise(content: bytes) -> str:
    text = content.replace(b"\r\n", b"\n").replace(b"\r", b"\n").decode()
    return text.replace("\0", "\ufffd")


@settings(max_examples=300, deadline=None)
@given(items=st.lists(st.tuples(paths, contents.filter(lambda c: isinstance(c, str) or c.isascii())), min_size=1, max_size=5))
def test_markdown_parser_gets_every_content_back(items):
    doc = slopfast.build_markdown(items)
    fences = [t for t in MarkdownIt("commonmark").parse(doc) if t.type == "fence"]
    assert len(fences) == len(items)
    for (path, content), token in zip(items, fences):
        raw = content.encode() if isinstance(content, str) else content
        # the newline the format adds; after a final lone CR the two read as one CRLF
        assert token.content == _normalise(raw + b"\n")
        assert token.info == fb.language(path.encode(), {}).decode()


# ---- limits: the same on both paths (docs/build-markdown.md, "Limits") -----------------

OP_H = (Path(__file__).resolve().parent.parent / "lib" / "op.h").read_text()


def test_limits_are_lib_op_h():
    import re

    for name in ("LIMIT_INPUTS", "LIMIT_NAME_BYTES"):
        value = re.search(rf"\b{name}\s*=\s*([^,]+),", OP_H).group(1).split("/*")[0].replace("u", "")
        assert getattr(fb, name) == eval(value), name
    for name in ("REQUEST", "INPUT", "OUTPUT"):
        value = re.search(rf"#define SLOPFAST_LIMIT_{name}_BYTES (.+)", OP_H).group(1).replace("(U8)", "")
        assert getattr(fb, f"LIMIT_{name}_BYTES") == eval(value), name


def _errors(result):
    return [(path, err.errno) for path, err in result.skipped]


def _build(*args, **kwargs):
    """slopfast.aggregate.build's result, comparable: (document, [(path, errno)])."""
    result = slopfast.aggregate.build(*args, **kwargs)
    return result.document, _errors(result)


def test_file_past_the_input_limit_is_efbig_unread(backends, tmp_path):
    """A sparse file of 2 GiB + 1 (no disk used): EFBIG from its size, before any read."""
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        f.truncate(fb.LIMIT_INPUT_BYTES + 1)
    for result in backends(lambda: slopfast.aggregate.build([str(big), ("a.txt", "a")])):
        assert _errors(result) == [(str(big), errno.EFBIG)]
        assert result.document == b"### `a.txt`\n\n```txt\na\n```"


NON_REGULAR = """
import os, sys, time
from slopfast import aggregate
os.environ["SLOPFAST_BACKEND"] = sys.argv[1]
t = time.monotonic()
result = aggregate.build(sys.argv[2:] + [("a.txt", "a")])
print([(p, e.errno) for p, e in result.skipped], result.document, round(time.monotonic() - t, 1))
"""


@pytest.mark.skipif(not hasattr(os, "mkfifo") or not os.path.exists("/dev/zero"), reason="POSIX FIFOs and /dev/zero")
def test_non_regular_files_are_refused_unread_and_never_block(backends, tmp_path):
    """/dev/zero would read forever, a FIFO without a writer blocks an open:
    both are EINVAL after open(O_NONBLOCK) + fstat, in a child process that
    must answer within the timeout."""
    import subprocess
    import sys

    from conftest import subprocess_env

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    paths = ["/dev/zero", str(fifo), str(tmp_path)]
    want = f"{[('/dev/zero', errno.EINVAL), (str(fifo), errno.EINVAL), (str(tmp_path), errno.EISDIR)]!r} " \
           f"{b'### `a.txt`' + bytes([10, 10]) + b'```txt' + bytes([10]) + b'a' + bytes([10]) + b'```'!r}"

    def run():
        proc = subprocess.run([sys.executable, "-c", NON_REGULAR, os.environ["SLOPFAST_BACKEND"], *paths],
                              capture_output=True, text=True, timeout=60, env=subprocess_env(), cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        out, seconds = proc.stdout.rsplit(" ", 1)
        assert float(seconds) < 5
        return out

    assert backends(run) == [want, want]


def test_regular_file_without_a_size_is_read_on(backends):
    """/proc files say size 0 and have content: read past the fstat size."""
    if not os.path.exists("/proc/version"):
        pytest.skip("no /proc/version")
    native, fallback = backends(lambda: _build(["/proc/version"]))
    assert native == fallback and not native[1]
    assert _body(native[0]).startswith(b"Linux version")


def test_inline_past_a_lowered_input_limit(backends, monkeypatch):
    """With the limit lowered in Python (the native path applies it to inline
    content before a request is built, the fallback when it reads; the C side
    is tested with a lowered build below): at the limit kept, past it EFBIG."""
    monkeypatch.setattr(fb, "LIMIT_INPUT_BYTES", 10)
    items = [("i10", b"y" * 10), ("i11", b"y" * 11), ("j", "z"), ("i12", "y" * 12)]
    native, fallback = backends(lambda: _build(items))
    assert native == fallback
    assert fallback[1] == [("i11", errno.EFBIG), ("i12", errno.EFBIG)]
    assert fallback[0].count(b"### ") == 2


def test_fallback_file_past_a_lowered_input_limit(tmp_path, monkeypatch):
    """The fallback's read: at the limit read, one byte past it (also a file
    whose fstat size says less: /proc) EFBIG."""
    monkeypatch.setattr(fb, "LIMIT_INPUT_BYTES", 10)
    (tmp_path / "at").write_bytes(b"x" * 10)
    (tmp_path / "over").write_bytes(b"x" * 11)
    assert fb.read_input(Input(str(tmp_path / "at").encode())) == b"x" * 10
    for path in [str(tmp_path / "over")] + (["/proc/version"] if os.path.exists("/proc/version") else []):
        with pytest.raises(OSError) as info:
            fb.read_input(Input(path.encode()))
        assert info.value.errno == errno.EFBIG


def test_c_side_input_limit_on_inline_and_files(needs_native, tmp_path, monkeypatch):
    """The aggregate op itself (a build with LIMIT_INPUT_BYTES lowered to
    1000) refuses inline content past the limit as it refuses a file: EFBIG."""
    import native_builds
    from slopfast import native, wire
    from slopfast.wire import Input

    lib = native_builds.library("-DSLOPFAST_LIMIT_INPUT_BYTES=1000")
    (tmp_path / "over").write_bytes(b"x" * 1001)
    monkeypatch.chdir(tmp_path)
    request = wire.encode_request([("aggregate", {})], [Input(b"a", b"x" * 1000), Input(b"b", b"x" * 1001), Input(b"over")])
    resp = native.run_blob_opts(request, lib=lib)
    assert resp.code == 0 and wire.decode_records(resp.parts[1]) == [(1, errno.EFBIG), (2, errno.EFBIG)]
    assert resp.parts[0].startswith(b"### `a`")


def test_more_inputs_than_one_request_holds(needs_native, monkeypatch):
    """2^20 + 1 items (LIMIT_INPUTS per request): the native path sends two
    requests and joins them into the document one request would give."""
    monkeypatch.setenv("SLOPFAST_BACKEND", "native")
    n = fb.LIMIT_INPUTS + 1
    doc = slopfast.build_markdown([(str(i), b"") for i in range(n)], as_bytes=True)
    assert doc == fb.SEPARATOR.join(b"### `%d`\n\n```\n\n```" % i for i in range(n))


@pytest.mark.parametrize("limit", [1, 2, 3, 5])
def test_requests_split_by_count_and_bytes(backends, tmp_path, monkeypatch, limit):
    """With the per-request limits lowered: the same document and the same
    skipped indices as one request (and as the fallback), unreadable inputs
    in any request, a request whose every input is unreadable included."""
    monkeypatch.setattr(fb, "LIMIT_INPUTS", limit)
    good = tmp_path / "g.txt"
    good.write_text("file")
    missing = str(tmp_path / "missing")
    items = [("a", "1"), missing, missing, ("b.py", "x = 1\n"), str(good), missing, ("c", b"\xff"), missing]
    results = backends(lambda: _build(items, mode="summary"))
    monkeypatch.setattr(fb, "LIMIT_INPUTS", 1 << 20)
    one = _build(items, mode="summary")
    assert results[0] == results[1] == one
    assert len(one[1]) == 4
    monkeypatch.setattr(fb, "LIMIT_REQUEST_BYTES", 150 + 40 * limit)
    assert backends(lambda: _build(items, mode="summary")) == [one, one]


def test_path_past_the_name_limit(backends):
    """A path of more than 65535 bytes: the wire cannot carry it; the same
    PipelineError (code 5) on both paths, before anything runs."""
    errs = backends(lambda: pytest.raises(slopfast.PipelineError, slopfast.build_markdown, [("p" * 65536, "x")]).value)
    assert [(e.code, e.op, e.input, e.detail, str(e)) for e in errs] == [
        (5, "", None, "input path of 65536 bytes; the limit is 65535",
         "input path of 65536 bytes; the limit is 65535 (limit exceeded)")] * 2
    both(backends, [("p" * 65535, "x")])


def test_output_limit_c_side_accounting(needs_native, tmp_path, monkeypatch):
    """The C op's output limit (a build with 8192): the largest document that
    fits, with k unreadable inputs and one taken, is LIMIT - 81 - 8k - 13
    bytes (fb.response_bytes), as the Python side checks on both paths."""
    import native_builds
    from slopfast import native, wire
    from slopfast.wire import Input

    lib = native_builds.library("-DSLOPFAST_LIMIT_OUTPUT_BYTES=8192")
    monkeypatch.chdir(tmp_path)
    for k in (0, 3):
        answers = {}
        for n in range(7900, 8193):
            inputs = [Input(b"m%d" % i) for i in range(k)] + [Input(b"a", b"x" * n)]
            answers[n] = native.run_blob_opts(wire.encode_request([("aggregate", {})], inputs), lib=lib)
        largest = max(n for n, r in answers.items() if r.code == 0)
        assert fb.response_bytes(answers[largest].parts[0], k, 1) == 8192
        over = answers[largest + 1]
        assert (over.code, over.message) == (5, "aggregate: output larger than the limit of 8192 bytes")


def test_output_limit_same_on_both_paths(backends, tmp_path, monkeypatch):
    """The document limit lowered on both paths: at it the document, one byte
    past it the same PipelineError (code 5) from either path."""
    items = [("a", "x" * 100), str(tmp_path / "missing"), ("b", "y" * 50)]
    doc = slopfast.aggregate.build(items).document
    fits = fb.response_bytes(doc, 1, 2)
    monkeypatch.setattr(fb, "LIMIT_OUTPUT_BYTES", fits)
    native, fallback = backends(lambda: _build(items))
    assert native == fallback and native[0] == doc
    monkeypatch.setattr(fb, "LIMIT_OUTPUT_BYTES", fits - 1)
    errs = backends(lambda: pytest.raises(slopfast.PipelineError, slopfast.aggregate.build, items).value)
    want = f"output larger than the limit of {fits - 1} bytes"
    assert [(e.code, e.op, e.input, e.detail, str(e)) for e in errs] == [(5, "aggregate", None, want, f"aggregate: {want} (limit exceeded)")] * 2


# ---- error messages are valid UTF-8, whatever a request holds --------------------------

def _raw_request(ops, inputs=()) -> bytes:
    """A v3 request with names and paths as raw bytes (wire.encode_request
    takes str names): ops [(name, [(key, value)])], inputs [(path, data or None)]."""
    import struct

    from slopfast import wire

    out = [b"SLPF", bytes((wire.WIRE_VERSION,)), b"\0\0\0", struct.pack("<I", len(ops))]
    for name, params in ops:
        out += [struct.pack("<H", len(name)), name, struct.pack("<H", len(params))]
        for key, value in params:
            out += [struct.pack("<H", len(key)), key, struct.pack("<I", len(value)), value]
    out.append(struct.pack("<I", len(inputs)))
    for path, data in inputs:
        out += [struct.pack("<BBI", 1 if data is None else 0, 0, len(path)), path]
        if data is not None:
            out += [struct.pack("<Q", len(data)), data]
    return b"".join(out)


def _raw_answer(lib, request: bytes) -> tuple[int, bytes, list]:
    """(code, message bytes, error record) as the C side wrote them."""
    import ctypes

    from slopfast import wire

    resp = lib.run(request, len(request))
    try:
        c = resp.contents
        decoded = wire.decode_response(ctypes.string_at(c.data, c.len))
        record = wire.decode_records(decoded.parts[0]) if c.code else []
        return c.code, ctypes.string_at(c.message, c.message_len), record
    finally:
        lib.free(resp)


def _valid_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _shown(data: bytes, limit: int) -> bytes:
    """What a message shows of request bytes: at most `limit` of them, not
    cutting a character, and every byte outside UTF-8 as \\xNN."""
    cut = limit
    if len(data) > limit:
        for back in range(1, 4):      # a character the limit would cut is left out whole
            at = limit - back
            if at >= 0 and data[at] >= 0xC0:
                try:
                    data[at:at + 4].decode("utf-8")
                except UnicodeDecodeError as exc:
                    ok = exc.start
                else:
                    ok = 4
                if ok > back:
                    cut = at
                break
            if at < 0 or not 0x80 <= data[at] < 0xC0:
                break
    return data[:cut].decode("utf-8", "backslashreplace").encode("utf-8")


names = st.one_of(st.binary(min_size=1, max_size=300),
                  st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=150).map(str.encode))


@settings(max_examples=400, deadline=None)
@given(name=names.filter(lambda n: b"\0" not in n), path=names)
def test_error_messages_are_utf8(lib, name, path):
    """Random op names (an unknown op quotes its name) and paths (an
    unreadable file is named): the message and the error record's detail are
    valid UTF-8, bytes that are not UTF-8 escaped as \\xNN, a name cut at 200
    bytes never inside a character."""
    from slopfast import ops

    if name.decode("utf-8", "replace") in {op.name for op in ops.NATIVE}:
        return
    code, message, record = _raw_answer(lib, _raw_request([(name, [])]))
    assert code == 2 and _valid_utf8(message) and all(_valid_utf8(r[2]) for r in record)
    assert message == b"unknown op '" + _shown(name, 200) + b"'"
    code, message, record = _raw_answer(lib, _raw_request([(b"py_skeleton", [])], [(b"/nonexistent/" + path, None)]))
    assert code == 4 and _valid_utf8(message) and record[0][2] == b"cannot read (errno 2)"
    assert message == b"py_skeleton: " + _shown(b"/nonexistent/" + path, 400) + b": cannot read (errno 2)"


def test_error_messages_of_the_text_wire_are_utf8(lib):
    """v1 requests quote request words in some errors: escaped too."""
    for word in (b"\xff", b"ok\xe2\x82", "é".encode() * 80, b"\xed\xa0\x80"):
        for text in (b"slopfast-request 1\n" + word + b"\nend\n", b"slopfast-request 1\nop echo\ninput " + word + b" x\nend\n"):
            code, message, record = _raw_answer(lib, text)
            assert code == 1 and _valid_utf8(message), (text, message)
            assert _shown(word, 100) in message


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.binary(min_size=1, max_size=60))
def test_unreadable_path_errors_are_utf8_on_both_paths(backends, tmp_path, path):
    """The InputError for an unreadable path of any bytes: the same errno and
    filename on both paths, and its message encodes as UTF-8."""
    missing = bytes(tmp_path) + b"/missing-" + path.replace(b"/", b"_").replace(b"\0", b"_")
    for err in backends(lambda: pytest.raises(slopfast.InputError, slopfast.build_markdown, [missing]).value):
        assert err.errno in (errno.ENOENT, errno.ENAMETOOLONG, errno.EILSEQ)
        assert err.filename == os.fsdecode(missing)
        str(err).encode("utf-8")


# ---- streaming to a descriptor, and the load checks -----------------------------

from slopfast import aggregate as agg   # noqa: E402
from slopfast import wire               # noqa: E402

CHECKS = fb.Checks(nofollow=True, sniff=True, max_bytes=1000)


def _paths(tmp_path, files: dict) -> list[Input]:
    inputs = []
    for name, content in files.items():
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content if isinstance(content, bytes) else content.encode())
        inputs.append(Input(os.fsencode(p)))
    return inputs


def _stream(run, inputs, out: Path, **kwargs) -> tuple[bytes, fb.Built]:
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        built = run(inputs, wire.MODE_FULL if "mode" not in kwargs else kwargs.pop("mode"), {}, out_fd=fd, **kwargs)
    finally:
        os.close(fd)
    return out.read_bytes(), built


def _native_run(inputs, mode, langs, **kwargs):
    return agg._native(inputs, mode, langs, **kwargs)


def _fallback_run(inputs, mode, langs, **kwargs):
    return fb.build(inputs, mode, langs, fb_summary.summarise, **kwargs)


def stream_both(tmp_path, inputs, **kwargs) -> tuple[bytes, fb.Built]:
    """The streamed document and answer, the same from both paths, and the
    same document as the native path builds in memory."""
    native = _stream(_native_run, inputs, tmp_path / "native.out", **dict(kwargs))
    fallback = _stream(_fallback_run, inputs, tmp_path / "fallback.out", **dict(kwargs))
    assert native == fallback
    in_memory = _native_run(inputs, kwargs.pop("mode", wire.MODE_FULL), {}, **kwargs)
    assert (in_memory.document, in_memory.unreadable, in_memory.files) == (native[0], native[1].unreadable, native[1].files)
    return native


def test_stream_is_the_document_and_records_every_input(needs_native, tmp_path):
    inputs = _paths(tmp_path, {"a.txt": "one\n", "b.md": "# T\n```\nx\n```\n", "e": ""})
    inputs.insert(1, Input(os.fsencode(tmp_path / "missing")))
    inputs.append(Input(b"inline.py", b"x = 1\n"))
    doc, built = stream_both(tmp_path, inputs, checks=CHECKS)
    assert doc == slopfast.build_markdown([os.fsdecode(i.path) if i.data is None else (i.path, i.data) for i in inputs],
                                          as_bytes=True, errors="skip")
    assert built.unreadable == [(1, errno.ENOENT)]
    assert built.files == [(0, 0, 4), (2, 0, 14), (3, 0, 0), (4, 0, 6)]
    assert (built.written, built.write_errno) == (len(doc), 0)


@pytest.mark.parametrize("mode", [wire.MODE_FULL, wire.MODE_SUMMARY, wire.MODE_SKELETON])
def test_stream_large_bodies_and_many_flushes(needs_native, tmp_path, mode):
    """Bodies past the direct-write size and documents past several flushes."""
    files = {f"d/f{i:03}.py": f"def f{i}():\n    return {i}\n" * (i * 40) for i in range(60)}
    files["big.md"] = ("# h\n" + "`" * 7 + "\n" + "text line\n" * 40000)
    files["huge.txt"] = "y" * 700_000
    doc, built = stream_both(tmp_path, _paths(tmp_path, files), mode=mode, checks=fb.Checks(max_bytes=0))
    assert built.written == len(doc) > (2 << 20 if mode == wire.MODE_FULL else 0)
    assert [skip for _, skip, _ in built.files] == [0] * len(files)


def test_stream_continues_a_document(needs_native, tmp_path):
    inputs = _paths(tmp_path, {"a": "1", "b": "2"})
    doc, _ = stream_both(tmp_path, inputs, continues=True)
    assert doc.startswith(fb.SEPARATOR + b"### ")


@pytest.mark.parametrize("limit", [1, 2, 5])
def test_stream_in_several_requests_is_one_document(needs_native, tmp_path, monkeypatch, limit):
    inputs = _paths(tmp_path, {f"f{i}": f"{i}\n" for i in range(7)})
    whole, _ = _stream(_native_run, inputs, tmp_path / "whole.out", checks=CHECKS)
    monkeypatch.setattr(fb, "LIMIT_INPUTS", limit)
    doc, built = stream_both(tmp_path, inputs, checks=CHECKS)
    assert doc == whole and [i for i, *_ in built.files] == list(range(7))


def test_load_checks_on_the_descriptor(needs_native, tmp_path):
    files = {
        "text": "x" * 1000,                            # at max_bytes: taken
        "over": "x" * 1001,                            # past it
        "nul-late": b"x" * 8192 + b"\0",               # past the sniffed bytes: text
        "nul": b"x" * 8191 + b"\0",                    # binary
    }
    inputs = _paths(tmp_path, dict(files, **{"nul-late": b"x" * 900}))
    (tmp_path / "nul-late").write_bytes(b"x" * 8192 + b"\0")
    os.symlink(tmp_path / "text", tmp_path / "link")
    (tmp_path / "dir").mkdir()
    extra = [Input(os.fsencode(tmp_path / n)) for n in ("link", "dir")]
    _, built = stream_both(tmp_path, inputs + extra, checks=fb.Checks(nofollow=True, sniff=True, max_bytes=10_000))
    assert built.files == [(0, 0, 1000), (1, 0, 1001), (2, 0, 8193), (3, wire.SKIP_BINARY, 0),
                           (4, wire.SKIP_SYMLINK, 0)]
    assert built.unreadable == [(5, errno.EISDIR)]
    _, built = stream_both(tmp_path, inputs, checks=fb.Checks(max_bytes=1000))
    assert built.files == [(0, 0, 1000), (1, wire.SKIP_TOO_LARGE, 1001), (2, wire.SKIP_TOO_LARGE, 8193),
                           (3, wire.SKIP_TOO_LARGE, 8192)]


def test_without_checks_a_symlink_is_followed_and_binary_kept(needs_native, tmp_path):
    inputs = _paths(tmp_path, {"nul": b"\0\1"})
    os.symlink(tmp_path / "nul", tmp_path / "link")
    _, built = stream_both(tmp_path, inputs + [Input(os.fsencode(tmp_path / "link"))])
    assert built.files == [(0, 0, 2), (1, 0, 2)]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")
def test_special_files_are_skipped_unread(needs_native, tmp_path):
    os.mkfifo(tmp_path / "fifo")                       # no writer: opening it must not wait
    inputs = [Input(os.fsencode(tmp_path / "fifo")), Input(b"/dev/zero")]
    _, built = stream_both(tmp_path, inputs, checks=CHECKS)
    import stat
    assert built.files == [(0, wire.SKIP_SPECIAL, stat.S_IFIFO), (1, wire.SKIP_SPECIAL, stat.S_IFCHR)]


def test_the_output_file_is_never_read(needs_native, tmp_path):
    inputs = _paths(tmp_path, {"a": "1", "out": "an old document"})
    for run in (_native_run, _fallback_run):
        doc, built = _stream(run, inputs, tmp_path / "out", checks=CHECKS)
        assert doc == slopfast.build_markdown([os.fsdecode(inputs[0].path)], as_bytes=True)
        assert built.files == [(0, 0, 1), (1, wire.SKIP_OUTPUT, 0)]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="Linux /dev/full")
def test_a_failed_write_stops_with_its_errno(needs_native, tmp_path):
    inputs = _paths(tmp_path, {f"f{i}": "x" * 300_000 for i in range(5)})
    for run in (_native_run, _fallback_run):
        fd = os.open("/dev/full", os.O_WRONLY)
        try:
            built = run(inputs, wire.MODE_FULL, {}, out_fd=fd)
        finally:
            os.close(fd)
        assert built.write_errno == errno.ENOSPC
        assert len(built.files) < len(inputs)          # it stopped


def test_a_closed_pipe_is_epipe_on_both_paths(needs_native, tmp_path):
    inputs = _paths(tmp_path, {f"f{i}": "x" * 100_000 for i in range(4)})
    for run in (_native_run, _fallback_run):
        r, w = os.pipe()
        os.close(r)
        try:
            built = run(inputs, wire.MODE_FULL, {}, out_fd=w)
        finally:
            os.close(w)
        assert built.write_errno == errno.EPIPE


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=st.dictionaries(st.text("abc.", min_size=1, max_size=6).filter(lambda n: n not in (".", "..")),
                             st.one_of(st.binary(max_size=300), st.text(max_size=300)), max_size=8),
       mode=st.sampled_from([wire.MODE_FULL, wire.MODE_SUMMARY, wire.MODE_SKELETON]),
       max_bytes=st.sampled_from([0, 50, 1000]))
def test_generated_streams_native_equals_fallback(needs_native, tmp_path, files, mode, max_bytes):
    import shutil
    root = tmp_path / "gen"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    stream_both(tmp_path, _paths(root, files), mode=mode, checks=fb.Checks(True, True, max_bytes))


# ---- reading on two threads (lib/aggregate.c, "reading ahead") ----------------------

# What a helper thread may load, one of each kind the load checks meet: the
# runs it takes (32 inputs) hold any mix of them, and its 512 KiB per run is
# crossed by the large ones.
_KINDS = ("text", "empty", "binary", "too_large", "missing", "fifo", "symlink", "inline", "large", "bad_utf8",
          "directory")


@pytest.fixture(scope="module")
def kinds(tmp_path_factory) -> dict[str, Input]:
    root = tmp_path_factory.mktemp("kinds")
    (root / "text").write_bytes(b"a line\n")
    (root / "empty").write_bytes(b"")
    (root / "binary").write_bytes(b"\x00\x01bin")
    (root / "too_large").write_bytes(b"z" * (1 << 21))
    (root / "large").write_bytes(b"L\n``````\n" * 40_000)       # past the direct write, a long backtick run
    (root / "bad_utf8").write_bytes(b"caf\xe9 \xff\n")
    (root / "directory").mkdir()
    (root / "symlink").symlink_to(root / "text")
    if hasattr(os, "mkfifo"):
        os.mkfifo(root / "fifo")
    made = {kind: Input(os.fsencode(root / kind)) for kind in _KINDS if kind != "inline"}
    return {**made, "inline": Input(b"inline.md", b"# inline\n")}


_PREFETCH_CHECKS = fb.Checks(nofollow=True, sniff=True, max_bytes=1 << 20)


def _on_threads(threads: str, inputs: list[Input], out: str | None) -> tuple:
    """The native answer to one request on `threads` threads, written to
    `out` (a path, /dev/full, or None: in memory)."""
    real = agg._THREADS
    agg._THREADS = lambda: threads
    fd = None if out is None else os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        built = agg._native(inputs, wire.MODE_FULL, {}, _PREFETCH_CHECKS, fd)
    finally:
        agg._THREADS = real
        if fd is not None:
            os.close(fd)
    document = built.document if out is None else b"" if out == "/dev/full" else Path(out).read_bytes()
    return document, built.unreadable, built.files, built.written, built.write_errno


def _read_alike(kinds, picks: list[int], out: str, tmp_path: Path) -> tuple:
    inputs = [kinds[_KINDS[k]] for k in picks]
    target = {"file": str(tmp_path / "doc"), "full": "/dev/full", "memory": None}[out]
    one = _on_threads("1", inputs, target)
    assert _on_threads("2", inputs, target) == one
    return one


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs")
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(picks=st.lists(st.integers(0, len(_KINDS) - 1), max_size=160),
       out=st.sampled_from(["file", "full", "memory"]))
def test_two_threads_read_what_one_reads(needs_native, kinds, tmp_path, picks, out):
    _read_alike(kinds, picks, out, tmp_path)


@pytest.mark.skipif(not hasattr(os, "mkfifo") or not os.path.exists("/dev/full"), reason="FIFOs, /dev/full")
@pytest.mark.parametrize("count", [31, 32, 33, 64, 65, 97, 200])
def test_two_threads_read_every_kind_in_every_place_of_a_run(needs_native, kinds, tmp_path, count):
    picks = [i % len(_KINDS) for i in range(count)]
    document, unreadable, files, written, _ = _read_alike(kinds, picks, "file", tmp_path)
    assert len(unreadable) + len(files) == count and written == len(document) > 0
    assert {wire.SKIP_NAMES[skip] for _, skip, _ in files} >= {"binary", "too-large", "special", "symlink"}
    _read_alike(kinds, [_KINDS.index("large")] * count, "file", tmp_path)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="Linux /dev/full")
def test_a_failed_write_reports_no_file_the_helper_read_past_it(needs_native, kinds, tmp_path):
    """The writer stops at ENOSPC with the helper runs ahead: what the helper
    loaded and the writer never reached is not in the records."""
    _, unreadable, files, _, errno_ = _read_alike(kinds, [_KINDS.index("large")] * 200, "full", tmp_path)
    assert errno_ == errno.ENOSPC and unreadable == [] and 0 < len(files) < 200
    assert [i for i, _, _ in files] == list(range(len(files)))


# ---- aggregate_paths: the library's command ------------------------------------------

def _tree(root: Path) -> Path:
    files = {"a.py": "def f():\n    return 1\n", "sub/b.md": "# B\n\ntext\n", "sub/c.txt": "c\n",
             "img.bin": b"\0\1\2", ".hidden": "h", "big.txt": "z" * 5000, "__pycache__/x.pyc": b"\0"}
    for name, content in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content if isinstance(content, bytes) else content.encode())
    return root


def test_an_old_document_is_emptied_before_the_first_write(backend, tmp_path, monkeypatch):
    """The output path is opened without O_TRUNC and emptied on a thread of
    its own (aggregate._Emptying): a slow emptying still comes before every
    write, and no byte of the old, longer document stays."""
    tree = _tree(tmp_path / "t")
    fresh = tmp_path / "fresh.md"
    slopfast.aggregate_paths([tree], fresh)
    real = os.ftruncate

    def slow(fd, length):
        time.sleep(0.2)
        real(fd, length)

    monkeypatch.setattr(os, "ftruncate", slow)
    for old in (b"OLD " * 300_000, b"x"):
        out = tmp_path / "out.md"
        out.write_bytes(old)
        slopfast.aggregate_paths([tree], out)
        assert out.read_bytes() == fresh.read_bytes()


def test_an_old_document_goes_when_nothing_is_written(backend, tmp_path):
    (tmp_path / "empty").mkdir()
    out = tmp_path / "out.md"
    out.write_bytes(b"an old document\n")
    report = slopfast.aggregate_paths([tmp_path / "empty"], out)
    assert report.files == [] and out.read_bytes() == b""


def test_an_old_document_goes_when_nothing_touches_the_output(tmp_path, monkeypatch):
    """A run that fails before its first write still leaves no old document
    behind (O_TRUNC's promise, kept by _Output's exit)."""
    real = os.ftruncate
    monkeypatch.setattr(os, "ftruncate", lambda fd, n: (time.sleep(0.2), real(fd, n)))
    out = tmp_path / "out.md"
    out.write_bytes(b"an old document\n")
    with pytest.raises(RuntimeError), agg._Output(out):
        raise RuntimeError("the walk failed")
    assert out.read_bytes() == b""


def test_a_failed_emptying_is_an_error(tmp_path):
    r, w = os.pipe()
    try:
        emptying = agg._Emptying(w)     # a pipe has no length to cut
        with pytest.raises(OSError):
            emptying.wait()
    finally:
        os.close(r), os.close(w)


def test_aggregate_paths_to_a_path_a_descriptor_and_a_file_object(backend, tmp_path):
    import io
    root = _tree(tmp_path / "t")
    by_path = slopfast.aggregate_paths([root], tmp_path / "out.md", max_file_size=4096)
    with open(tmp_path / "fd.md", "wb") as f:
        slopfast.aggregate_paths([root], f.fileno(), max_file_size=4096)
    buffer = io.BytesIO()
    report = slopfast.aggregate_paths([root], buffer, max_file_size=4096)
    doc = (tmp_path / "out.md").read_bytes()
    assert doc == (tmp_path / "fd.md").read_bytes() == buffer.getvalue()
    prefix = str(root) + "/"
    assert report.files == by_path.files == [(prefix + "a.py", 22), (prefix + "sub/b.md", 10), (prefix + "sub/c.txt", 2)]
    assert sorted((s.path[len(prefix):], s.reason) for s in report.skipped) == [("big.txt", "too-large"), ("img.bin", "binary")]
    assert report.unreadable == [] and report.bytes_written == len(doc)
    names = [os.fsdecode(p) for p, _ in report.files]
    assert doc == slopfast.build_markdown(names, as_bytes=True) + b"\n"


def test_aggregate_paths_modes_and_full_patterns(backend, tmp_path):
    import io
    root = _tree(tmp_path / "t")
    out = io.BytesIO()
    slopfast.aggregate_paths([root], out, mode="summary", full=["*.md"])
    prefix = str(root) + "/"
    expected = slopfast.build_markdown([(prefix + "a.py", (root / "a.py").read_bytes()),
                                        (prefix + "big.txt", (root / "big.txt").read_bytes()),
                                        (prefix + "sub/b.md", (root / "sub/b.md").read_bytes(), "full"),
                                        (prefix + "sub/c.txt", (root / "sub/c.txt").read_bytes())],
                                       mode="summary", as_bytes=True)
    assert out.getvalue() == expected + b"\n"


def test_aggregate_paths_stream_equals_the_checking_walk(backend, tmp_path):
    """The load checks decide as the walk's own checks (walk.WalkOptions(check_files=True)) would."""
    from slopfast import walk
    root = _tree(tmp_path / "t")
    os.symlink(root / "a.py", root / "link.py")
    if hasattr(os, "mkfifo"):
        os.mkfifo(root / "fifo")
    (root / "grown.txt").write_bytes(b"g" * 100)
    seen = []
    slopfast.aggregate_paths([root], tmp_path / "out.md", max_file_size=4096, on_event=seen.append)
    events = list(walk.walk([str(root)], walk.WalkOptions(max_file_size=4096)))
    def norm(events):
        return [e._replace(content=None, ident=None) if isinstance(e, walk.Found) else e for e in events]
    assert norm(seen) == norm(events)


def test_a_failing_callback_stops_the_stream_and_its_calls(backend, tmp_path, monkeypatch):
    """The calls run on a thread of their own a batch ahead of the outcomes:
    an error in on_event stops them before aggregate_paths returns, and no
    later batch is written (the output does not change after it)."""
    import threading
    import time
    monkeypatch.setattr(agg, "BATCH_FILES", 64)   # batches of 32, 64, 64 ...: the 40th file is in the second
    root = tmp_path / "t"
    root.mkdir()
    for k in range(600):
        (root / f"f{k:03d}.txt").write_text(f"file {k}\n")
    out = tmp_path / "out.md"
    seen = []

    def on_event(event):
        seen.append(event)
        if len(seen) == 40:
            raise KeyError("stop here")

    with pytest.raises(KeyError, match="stop here"):
        slopfast.aggregate_paths([root], out, on_event=on_event)
    assert not [t for t in threading.enumerate() if t.name == "slopfast-calls"]
    size = out.stat().st_size
    time.sleep(0.05)
    assert out.stat().st_size == size
    text = out.read_text()
    assert "f039.txt" in text           # the batch being settled was written ...
    assert "f599.txt" not in text       # ... and not the batches after the next one


def test_aggregate_paths_rejects_bad_patterns_and_modes(tmp_path):
    from slopfast.walk import PatternError
    with pytest.raises(PatternError):
        slopfast.aggregate_paths([tmp_path], tmp_path / "o", exclude=["[z-a]"])
    with pytest.raises(ValueError):
        slopfast.aggregate_paths([tmp_path], tmp_path / "o", mode="brief")


@pytest.mark.skipif("sanitize" in os.environ.get("SLOPFAST_LIB", ""),
                    reason="ASan's quarantine keeps freed memory: RSS says nothing there")
def test_peak_memory_is_bounded_whatever_the_input(needs_native, tmp_path):
    """96 MB of files through `slopfast aggregate -o`: the process stays under 64 MiB."""
    import subprocess
    import sys

    from conftest import subprocess_env
    root = tmp_path / "t"
    root.mkdir()
    block = (b"line of text " * 80 + b"\n") * 1000
    for i in range(96):
        (root / f"f{i:02}.txt").write_bytes(block[: 1 << 20])
    code = ("import resource, subprocess, sys; "
            "r = subprocess.run([sys.executable, '-m', 'slopfast', 'aggregate', sys.argv[1], '-o', sys.argv[2]]); "
            "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code, str(root), str(tmp_path / "out.md")], env=subprocess_env(),
                         capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "0" and (tmp_path / "out.md").stat().st_size > 96_000_000
    assert int(out[1]) < 64 * 1024, f"peak RSS {int(out[1]) // 1024} MiB"


# ---- token counts of the document ---------------------------------------------------

def _tiktoken(name: str):
    from slopfast import tokens
    from slopfast.fallbacks import tokens as fb_tokens
    return fb_tokens.encoding(name, lambda: tokens._ranks(name).ranks)


def _exact(doc: bytes, name: str = "o200k_base") -> int:
    return len(_tiktoken(name).encode_ordinary(doc.decode("utf-8", "replace")))


@pytest.mark.parametrize("name", ["o200k_base", "cl100k_base"])
@given(a=st.binary(max_size=40), b=st.binary(max_size=40),
       c=st.sampled_from([bytes([i]) for i in range(0x21, 0x7f) if i != 0x2f]))
@settings(max_examples=300, deadline=None)
def test_units_begin_where_tiktoken_cannot_join(name, a, b, c):
    """The claim counting rests on (fb.Counting): after a LF, before an ASCII
    character other than a space, a control or '/', the counts of the two
    sides add up to the count of the whole, by tiktoken."""
    left, right = a + b"\n", c + b
    assert _exact(left + right, name) == _exact(left, name) + _exact(right, name)


@pytest.mark.parametrize("name", ["o200k_base", "cl100k_base"])
@pytest.mark.parametrize("left, right", [(b"```\n", b"\r"), (b"a\n", b" \nb"), (b"a\n", b"\t\nb"), (b"a\n", b"\n")]
                         + [(b"```\n", b"/")])
def test_units_do_not_begin_before_a_slash_or_a_space(name, left, right):
    """The characters left out of the rule: there tiktoken's pieces can join
    across the LF (o200k's punctuation runs take '/' after their LFs)."""
    import regex
    from slopfast.fallbacks.tokens import PATTERNS
    pieces = lambda b: regex.findall(PATTERNS[name], b.decode())   # noqa: E731
    if name == "cl100k_base" and right == b"/":
        assert pieces(left + right) == pieces(left) + pieces(right)    # cl100k takes only CR and LF
    else:
        assert pieces(left + right) != pieces(left) + pieces(right)


COUNT_CASES = [dict(format=f) for f in ("markdown", "xml", "json", "plain")] + [
    dict(tree=True), dict(format="json", tree=True), dict(format="xml", tree=True, line_numbers=True),
    dict(mode="summary"), dict(mode="skeleton", raw=True), dict(count_tokens="cl100k_base", format="plain", tree=True),
]


def _count_tree(root: Path) -> None:
    (root / "src").mkdir(parents=True)
    (root / "docs").mkdir()
    (root / "src" / "app.py").write_text("import os\n\n\nclass A:\n    def f(self):\n        return 1\n")
    (root / "src" / "crlf.txt").write_bytes(b"one\r\ntwo\r\n   three\r\n")
    (root / "src" / "bad.txt").write_bytes(b"caf\xe9 \xff\xfe latin-1\n/slash first\n")
    (root / "docs" / "guide.md").write_text("# Guide\n\n  indented\n/path\n```\ncode\n```\n" * 50)
    (root / "docs" / "empty.md").write_text("")
    (root / "docs" / "one line").write_text("no newline at the end, tabs\t\there")
    (root / " space.txt").write_text(" leading space\n")


@pytest.mark.parametrize("case", COUNT_CASES, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_aggregate_counts_the_document_exactly(backends, tmp_path, monkeypatch, case):
    """Counted as it is written, in requests of one to two files (the carry
    goes from request to request): the total is tiktoken's count of the
    whole document, the same on both paths, per file too."""
    from slopfast import aggregate as agg
    _count_tree(tmp_path / "t")
    monkeypatch.setattr(agg, "FIRST_BATCH_FILES", 1)
    monkeypatch.setattr(agg, "BATCH_FILES", 2)
    case = dict(case)
    encoding = case.get("count_tokens", "o200k_base")
    case.setdefault("count_tokens", True)
    out = tmp_path / "out"

    def run():
        report = slopfast.aggregate_paths([tmp_path / "t"], out, **case)
        return report, out.read_bytes()

    (native, doc), (fallback, doc2) = backends(run)
    assert doc == doc2 and native == fallback
    assert native.tokens == _exact(doc, encoding)
    assert len(native.file_tokens) == len(native.files) == 7
    assert all(n > 0 for n in native.file_tokens)
    assert 0 <= native.tokens - sum(native.file_tokens) < 200      # the wrapper and the tree


def test_file_tokens_are_the_units_that_begin_in_the_section(backend, tmp_path):
    """A file's count: the tokens of the units (counted alone) that begin in
    its section, the separator before it included."""
    import io
    import re
    root = tmp_path / "t"
    root.mkdir()
    for name, text in [("a.txt", "alpha beta\n"), ("b.txt", "  gamma\n/x\n"), ("c.txt", "delta")]:
        (root / name).write_text(text)
    buffer = io.BytesIO()
    report = slopfast.aggregate_paths([root], buffer, count_tokens=True)
    doc = buffer.getvalue()
    starts = [0] + [m.start() + 1 for m in re.finditer(rb"\n(?=[!-.0-~])", doc)] + [len(doc)]
    sections = [0] + [m.start() for m in re.finditer(rb"\n\n---\n\n", doc)]   # where each file's bytes begin
    expected = [0] * 3
    for begin, end in zip(starts, starts[1:]):
        owner = max(k for k, at in enumerate(sections) if at <= begin)
        expected[owner] += _exact(doc[begin:end])
    assert report.file_tokens == expected and report.tokens == _exact(doc) == sum(expected)


def test_counting_without_rank_files_fails_before_any_work(tmp_path, monkeypatch):
    from slopfast import tokens
    monkeypatch.setattr(tokens, "rank_file_candidates", lambda encoding: [])
    monkeypatch.setattr(tokens, "_read_cached_blob", lambda encoding: None)
    monkeypatch.setattr(tokens, "_image_path", lambda encoding, path: None)   # a kept vocabulary would stand for one
    tokens._ranks_cached.cache_clear()
    try:
        with pytest.raises(tokens.TokenRanksError):
            slopfast.aggregate_paths([tmp_path], tmp_path / "o", count_tokens=True)
    finally:
        tokens._ranks_cached.cache_clear()
    assert not (tmp_path / "o").exists()
    with pytest.raises(ValueError):
        slopfast.aggregate_paths([tmp_path], tmp_path / "o", count_tokens="p50k_base")


@given(files=st.lists(st.binary(max_size=300) | st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
                      min_size=1, max_size=6),
       fmt=st.sampled_from(["markdown", "xml", "json", "plain"]), tree=st.booleans())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_generated_documents_count_exactly(needs_native, files, fmt, tree):
    """Generated contents and paths (a leading space or '/': no unit begins
    there), one request per file, the carry passed on: the same counts on
    both paths, request by request, and a total that is tiktoken's."""
    from slopfast import aggregate as agg
    from slopfast.wire import MODE_FULL
    items = [Input((" y" if i % 2 else "/x").encode() + b"%d" % i, data) for i, data in enumerate(files)]
    spec = agg.CountSpec()
    style = agg._style(fmt, False, False, tree)
    tally = agg._Tally()
    docs = []
    for i, item in enumerate(items):
        kwargs = dict(open=i == 0, close=i == len(items) - 1, first_index=i + 1)
        built = agg._native([item], MODE_FULL, {}, continues=i > 0, style=style, count=spec, carry=tally.carry, **kwargs)
        again = fb.build([item], MODE_FULL, {}, fb_summary.summarise, continues=i > 0, **style.kwargs(), **kwargs,
                         counting=fb.Counting(spec.fallback_counter(), tally.carry))
        assert built == again
        tally.add(built.counts, lambda j, i=i: i)
        docs.append(built.document)
    tally.finish(spec.counter())
    assert tally.tokens == _exact(b"".join(docs))


def test_counting_through_the_subprocess_transport(needs_native, tmp_path, monkeypatch):
    """No context to attach a vocabulary to: the requests carry the ranks,
    and the counts are the same."""
    _count_tree(tmp_path / "t")
    report = slopfast.aggregate_paths([tmp_path / "t"], tmp_path / "a", count_tokens=True, tree=True)
    monkeypatch.setenv("SLOPFAST_TRANSPORT", "subprocess")
    monkeypatch.setenv("SLOPFAST_BACKEND", "native")
    again = slopfast.aggregate_paths([tmp_path / "t"], tmp_path / "b", count_tokens=True, tree=True)
    assert again == report and (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes()
    assert report.tokens == _exact((tmp_path / "a").read_bytes())


def _threads_tree(root: Path) -> None:
    """Over the helper's block size (256 KiB) many times: many small files
    (more sections than a block has segments), units larger than a block
    (indented lines begin none), long files of short units, invalid UTF-8."""
    root.mkdir()
    for i in range(5000):
        (root / f"s{i:04d}.txt").write_bytes(b"x%d\n" % i if i % 3 else b" y\n/z\n")
    (root / "big_unit.py").write_bytes(b"class A:\n" + b"    def f(self): return 'a b c'\n" * 40000)
    (root / "many_units.md").write_bytes(b"# h\n\npara graph, words\n" * 60000)
    (root / "bad.txt").write_bytes(b"caf\xe9 \xff\n" * 30000 + b"\xf0\x9f")
    (root / "tail.txt").write_bytes(b"the end")


@pytest.mark.parametrize("batch", [10000, 7])
def test_two_threads_count_what_one_does(needs_native, tmp_path, monkeypatch, batch):
    """The helper thread's blocks: the same records as one thread and as the
    fallback, and the total is tiktoken's, in one request or many."""
    from slopfast import aggregate as agg
    _threads_tree(tmp_path / "t")
    monkeypatch.setattr(agg, "FIRST_BATCH_FILES", batch)
    monkeypatch.setattr(agg, "BATCH_FILES", batch)
    reports = {}
    for name, env in [("one", dict(SLOPFAST_THREADS="1", SLOPFAST_BACKEND="native")),
                      ("two", dict(SLOPFAST_THREADS="2", SLOPFAST_BACKEND="native")),
                      ("fallback", dict(SLOPFAST_BACKEND="fallback"))]:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        out = tmp_path / name
        reports[name] = slopfast.aggregate_paths([tmp_path / "t"], out, count_tokens=True, tree=True), out.read_bytes()
        monkeypatch.delenv("SLOPFAST_THREADS", raising=False)
    assert reports["one"] == reports["two"] == reports["fallback"]
    report, doc = reports["two"]
    assert len(doc) > 10 * (256 << 10) and len(report.files) == 5004
    assert report.tokens == _exact(doc)


def test_threads_parameter_is_checked(needs_native, tmp_path, monkeypatch):
    (tmp_path / "a.txt").write_text("a\n")
    monkeypatch.setenv("SLOPFAST_THREADS", "3")
    monkeypatch.setenv("SLOPFAST_BACKEND", "native")
    with pytest.raises(slopfast.SlopfastError, match="threads: 1 or 2"):
        slopfast.aggregate_paths([tmp_path], tmp_path / "o", count_tokens=True)


# ---- FileList: the report's files, packed -------------------------------------

_PATHS = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=40)   # lone surrogates too


@given(st.lists(st.tuples(_PATHS, st.integers(-1, 1 << 62)), max_size=30))
def test_file_list_holds_what_it_was_given(items):
    files = slopfast.FileList(items)
    assert len(files) == len(items)
    assert list(files) == items and files == items and files == tuple(items)
    assert [files[k] for k in range(len(items))] == items
    assert [files[k] for k in range(-len(items), 0)] == items
    assert files[1:-1:2] == items[1:-1:2]
    assert files == slopfast.FileList(items) and files != slopfast.FileList(items + [("x", 1)])
    assert eval(repr(files), {"FileList": slopfast.FileList}) == files


def test_file_list_behaves_as_a_list_where_it_differs():
    files = slopfast.FileList([("a.py", 3)])
    files.append(("b/\udcff.txt", 0))          # a surrogate-escaped byte, as os.fsdecode gives it
    assert files == [("a.py", 3), ("b/\udcff.txt", 0)] and files != [("a.py", 3)]
    assert files != [["a.py", 3], ["b/\udcff.txt", 0]]                # lists are not tuples, as in a list
    assert (files == {"a.py": 3}) is False
    with pytest.raises(IndexError):
        files[2]
    with pytest.raises(IndexError):
        files[-3]
    with pytest.raises(TypeError):
        hash(files)
    assert os.fsencode(files[1][0]) == b"b/\xff.txt"


def test_the_report_s_files_are_a_file_list(tmp_path):
    (tmp_path / "a.txt").write_text("abc")
    (tmp_path / "b.txt").write_bytes(b"\xff\n")
    report = slopfast.aggregate_paths([tmp_path], tmp_path.parent / f"{tmp_path.name}.md")
    assert isinstance(report.files, slopfast.FileList)
    assert report.files == [(f"{tmp_path}/a.txt", 3), (f"{tmp_path}/b.txt", 2)]
