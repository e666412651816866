"""Markdown outlines: native (lib/md_outline.c) == fallback (markdown-it-py,
block stage only) == markdown-it-py's full "commonmark" parse, on the 652
CommonMark 0.31.2 examples, the spec itself, the rust-book corpus, generated
documents and hostile input."""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

import slopfast
from slopfast import md_outline as md_api
from slopfast import native
from slopfast.errors import PipelineError
from slopfast.fallbacks import md_outline as fb
from slopfast.md_outline import Heading, markdown_outline, summarise_markdown
from slopfast.wire import Input

from conftest import DATA

pytestmark = pytest.mark.each_backend

SPEC_DIR = DATA / "commonmark"
SPEC_EXAMPLES = json.loads((SPEC_DIR / "commonmark-spec-0.31.2.json").read_text(encoding="utf-8"))
SPEC_DOC = (SPEC_DIR / "commonmark-spec-0.31.2.md").read_bytes()
CORPUS = sorted((DATA / "rust-book").rglob("*.md"))

_full = MarkdownIt("commonmark")


def reference(data: bytes | str) -> list[tuple[int, str, int]]:
    """markdown-it-py's full parse (inline stage included)."""
    text = data if isinstance(data, str) else data.decode("utf-8", "replace")
    return fb.outline_tokens(_full.parse(text))


def run_native(data: bytes, op: str = "md_outline") -> bytes:
    return native.run([(op, {})], [Input(b"<t>", data)])[0]


def native_outline(data: bytes) -> list[tuple[int, str, int]]:
    return [tuple(h) for h in md_api._decode_outline(run_native(data))]


def fallback_outline(data: bytes) -> list[tuple[int, str, int]]:
    return fb.outline(data.decode("utf-8", "replace"))


@pytest.fixture
def check(needs_native):
    """check(data): native == fallback == full parse; returns the outline."""

    def run(data: bytes | str):
        raw = data.encode("utf-8") if isinstance(data, str) else data
        want = reference(raw)
        assert fallback_outline(raw) == want
        assert native_outline(raw) == want
        summary = "".join(fb.summary_line(level, text) for level, text, _ in want)
        assert run_native(raw, "md_summary").decode("utf-8") == summary
        return want

    return run


# ---- conformance: the spec, its examples, a real book ---------------------

@pytest.mark.parametrize("example", SPEC_EXAMPLES, ids=lambda e: str(e["example"]))
def test_spec_example(check, example):
    check(example["markdown"])


def test_spec_examples_count():
    assert len(SPEC_EXAMPLES) == 652


def test_spec_document(check):
    headings = check(SPEC_DOC)
    assert len(headings) > 40
    assert headings[0][:2] == (1, "Introduction")


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: str(p.relative_to(DATA)))
def test_rust_book(check, path):
    check(path.read_bytes())


def test_rust_book_present():
    assert len(CORPUS) > 400


def test_fallback_without_native_matches_full_parse():
    """The fallback alone (no native library needed) is the full parse's outline."""
    for example in SPEC_EXAMPLES:
        assert fb.outline(example["markdown"]) == reference(example["markdown"])


# ---- the details the issue names ------------------------------------------

@pytest.mark.parametrize(
    "doc, want",
    [
        ("# Title #\n", [(1, "Title", 0)]),
        ("  ###   spaced   ###   \n", [(3, "spaced", 0)]),
        ("#\tTab\n", [(1, "Tab", 0)]),
        ("####### seven\n", []),
        ("#hashtag\n", []),
        ("Setext\nover two\n===\n", [(1, "Setext\nover two", 0)]),
        ("Foo\n   bar\n---\n", [(2, "Foo\n   bar", 0)]),
        ("[a]: /u\n===\n", []),                       # definitions only: no heading
        ("[a]: /u\nText\n===\n", [(1, "Text", 1)]),
        ("[a]: /u 'multi\nline title'\n===\n", []),
        ("[a]: javascript:x\n===\n", [(1, "[a]: javascript:x", 0)]),   # not a definition
        ("- a\n---\n", []),                           # thematic break, not setext
        ("> quote\nlazy\n===\n", []),                 # lazy line, not an underline
        ("```\n# no\n```\n# yes\n", [(1, "yes", 3)]),
        ("    # code\n", []),
        ("<div>\n# still html\n\n# out\n", [(1, "out", 3)]),
        ("<!-- c\n\n# in comment\n-->\n# after\n", [(1, "after", 4)]),
        ("- # in item\n  sub\n  ---\n", [(1, "in item", 0), (2, "sub", 1)]),
        ("\t# tab indented is code\n", []),
        (" \t# one space then tab: code\n", []),
        ("a\r\n# b\r\nc\r===\r", [(1, "b", 1), (1, "c", 2)]),
        ("# a\x00b\n", [(1, "a\ufffdb", 0)]),
        ("# x \u00a0#\u00a0\n", [(1, "x \u00a0#", 0)]),
    ],
)
def test_cases(check, doc, want):
    assert check(doc) == want


@pytest.mark.parametrize("doc", [b"", b"\n", b"   ", b"\t\n \n", b"\r", b"\r\n\r\n", b"\x00", b"#"])
def test_empty_and_blank(check, doc):
    check(doc)


@pytest.mark.parametrize(
    "doc",
    [
        b"# \xff\xfe bad\n",
        b"# a\xe2\x82\n",                 # truncated 3-byte sequence
        b"# \xe0\x80\xaf\n",              # overlong
        b"# \xed\xa0\x80 surrogate\n",
        b"# \xf0\x90\x80A\n",             # truncated 4-byte, then ASCII
        b"# \xf4\x90\x80\x80 too big\n",
        b"x\xc2\n\xc2\xa0===\n",
        b"\xef\xbb\xbf# bom\n",
        bytes(range(256)) + b"\n# tail\n",
    ],
)
def test_invalid_utf8_reads_as_replace(check, doc):
    check(doc)


def test_invalid_utf8_text_is_replacement_chars(needs_native):
    assert native_outline(b"# a\xffb\n") == [(1, "a\ufffdb", 0)]


def test_str_with_lone_surrogate(backends):
    native_result, fallback_result = backends(lambda: markdown_outline("# a\ud800b\n"))
    assert native_result == fallback_result == [Heading(1, "a?b", 0)]


# ---- nesting -------------------------------------------------------------

@pytest.mark.parametrize(
    "doc",
    [
        ">" * 100_000 + " # deep\n# top\n",
        "> " * 100_000 + "# deep\n",
        "1. " * 100_000 + "# deep\n",
        "- a\n" + "".join("  " * i + "- # h%d\n" % i for i in range(1, 60)),
        "".join("> " * i + "# q%d\n" % i for i in range(40)),
        ("> - " * 30 + "# mix\n") * 200,
        "[" * 100_000 + "\n# after\n",
        "(" * 100_000 + "\n===\n",
        "<div>" * 50_000 + "\n\n# after\n",
        "- " * 100_000 + "# deep\n# top\n",
        "* " * 100_000 + "# deep\n\n## top\n",
        "+ " * 100_000 + "\n# top\n",
        "1) " * 100_000 + "# deep\nlazy\n===\n",
        "-\t" * 100_000 + "# deep\n# top\n",
        (">" * 100_000 + " x\n") * 3 + "lazy\n---\n# top\n",
        "> " * 50_000 + "- " * 50_000 + "# deep\n# top\n",
    ],
    ids=["gt-run", "gt-spaced", "ordered-run", "indented-lists", "quote-ladder", "mixed", "brackets", "parens", "divs",
         "dash-run", "star-run", "plus-run", "paren-ordered-run", "dash-tab-run", "gt-lines-lazy", "gt-then-dash"],
)
def test_deep_nesting(check, doc):
    check(doc)


def test_nesting_stops_like_markdown_it(check):
    # markdown-it-py stops descending at maxNesting 20 token levels: a
    # heading 25 quotes deep is dropped, one 15 deep is kept.
    assert check("> " * 15 + "# kept\n") == [(1, "kept", 0)]
    assert check("> " * 25 + "# dropped\n") == []


# ---- generated documents ---------------------------------------------------

PREFIXES = ["", "", "", " ", "  ", "   ", "    ", "\t", " \t", "> ", ">", ">\t", "- ", "-\t", "* ", "+ ",
            "1. ", "2) ", "10. ", "  - ", "> - ", "- > ", "1.  ", "-    "]
PIECES = [
    "", "text", "more *text*", "# h", "## h ##", "### h #", "###### six", "####### seven", "#x", "#",
    "===", "---", "- - -", "***", "___", " = =", "--- x", "```", "````", "```rust", "``` a`b", "~~~", "~~~ x",
    "<div>", "</div>", "<DIV class=x>", "<!-- c", "-->", "<?p", "?>", "<!D", "<![CDATA[", "]]>",
    "<script>", "</script>", "<pre a>", "<a href='x'>", "</a >", "<x", "[foo]: /url", "[foo]: /url 'ti",
    "tle'", "[foo]:", "/url", "\"title\"", "[a]: <b c>", "[\u00a0]: /x", "[x]: javascript:1",
    "[x]: data:image/png;a", "[b\\]]: /c", "[c]: /d (p", "q)", "[d]:\t/e 'f' junk", "# \u00e9\u00a0",
    "\x00", "\u2003# x", "a\tb", "\\# not", "  # sp", "Setext", "lazy", "1.", "-", ">", "[", "]: x",
]
LINE = st.tuples(st.lists(st.sampled_from(PREFIXES), max_size=3), st.sampled_from(PIECES),
                 st.sampled_from(["", "", " ", "\t", "  ", " #", " \u00a0"]))
ENDS = st.sampled_from(["\n", "\n", "\n", "\r\n", "\r"])


@st.composite
def documents(draw):
    lines = draw(st.lists(st.tuples(LINE, ENDS), max_size=25))
    out = "".join("".join(prefix) + piece + tail + end for (prefix, piece, tail), end in lines)
    if out and draw(st.booleans()):
        out = out.rstrip("\r\n")
    return out


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=documents())
def test_generated_documents(check, doc):
    check(doc)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=documents(), noise=st.lists(st.tuples(st.integers(0, 400), st.binary(min_size=1, max_size=4)), max_size=4))
def test_generated_bytes(check, doc, noise):
    data = bytearray(doc.encode("utf-8"))
    for at, blob in noise:
        at = min(at, len(data))
        data[at:at] = blob
    check(bytes(data))


# ---- API, ops and errors --------------------------------------------------

def test_public_api_native_equals_fallback(backends):
    doc = SPEC_DOC + b"\n# x\xff\n"
    native_result, fallback_result = backends(lambda: markdown_outline(doc))
    assert native_result == fallback_result
    assert all(isinstance(h, Heading) for h in native_result)
    native_sum, fallback_sum = backends(lambda: summarise_markdown(doc))
    assert native_sum == fallback_sum


def test_public_api_types(backends):
    for text in ("# a\n", b"# a\n", bytearray(b"# a\n"), memoryview(b"# a\n")):
        assert backends(lambda: markdown_outline(text)) == [[Heading(1, "a", 0)]] * 2
    with pytest.raises(TypeError):
        markdown_outline(1)  # type: ignore[arg-type]


def test_summary_format(backends):
    doc = "# One\n## Two\nsplit\nline\n---\n###### Six\n#\n"
    want = "- One\n  - Two\n  - split line\n          - Six\n- \n"
    assert backends(lambda: summarise_markdown(doc)) == [want, want]
    assert backends(lambda: summarise_markdown("no headings")) == ["", ""]


def test_exported_from_package():
    for name in ("markdown_outline", "summarise_markdown", "Heading"):
        assert getattr(slopfast, name, getattr(md_api, name)) is getattr(md_api, name)


def test_one_part_per_input(needs_native):
    parts = native.run([("md_outline", {})], [Input(b"a", b"# a\n"), Input(b"b", b""), Input(b"c", b"b\n-\n")])
    assert [md_api._decode_outline(p) for p in parts] == [[Heading(1, "a", 0)], [], [Heading(2, "b", 0)]]


def test_file_input(needs_native, tmp_path):
    path = tmp_path / "doc.md"
    path.write_bytes(b"x\r\n# From file\r\n")
    parts = native.run([("md_outline", {}), ("md_summary", {})], [Input(str(path).encode(), None)])
    assert md_api._decode_outline(parts[0]) == [Heading(1, "From file", 1)]
    assert parts[1] == b"- From file\n"


def test_missing_file_is_input_error(needs_native, tmp_path):
    missing = str(tmp_path / "nope.md").encode()
    with pytest.raises(PipelineError) as err:
        native.run([("md_outline", {})], [Input(missing, None)])
    assert err.value.code == 4
    assert "nope.md" in str(err.value)

