"""aggregate's formats (markdown, xml, json, plain), raw and text content,
line numbers and shown paths: each format parsed back by its own parser
(xml.etree and xml.dom, json, markdown-it-py) gives every path and content
back exactly, native and fallback alike (docs/build-markdown.md)."""
from __future__ import annotations

import codecs
import errno
import io
import json
import os
import re
import xml.dom.minidom
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

import slopfast
from slopfast import aggregate as agg
from slopfast import wire
from slopfast.errors import PipelineError
from slopfast.fallbacks import aggregate as fb
from slopfast.fallbacks import summary as fb_summary
from slopfast.wire import Input

from conftest import DATA

pytestmark = pytest.mark.each_backend

FORMATS = ("markdown", "xml", "json", "plain")
RUST_BOOK = sorted((DATA / "rust-book").rglob("*.md"))
SPEC = DATA / "commonmark" / "commonmark-spec-0.31.2.json"


def both(backends, items, **kwargs) -> bytes:
    native, fallback = backends(lambda: slopfast.build_markdown(items, as_bytes=True, errors="skip", **kwargs))
    assert native == fallback
    return native


# ---- readers: what a program does to get the files back ---------------------------

def read_xml(doc: bytes) -> list[tuple[int, bytes, bytes]]:
    """(index, path, content) of each document: the content is the text of
    <document_content> between its first and last LF, each <byte hex="NN"/>
    standing for byte NN; the path is <source> with the shown-path escapes undone."""
    root = ET.fromstring(doc)
    assert root.tag == "documents" and not (root.text or "").strip()
    out = []
    for d in root:
        assert d.tag == "document" and [c.tag for c in d] == ["source", "document_content"]
        source, content = d
        parts = [(content.text or "").encode()]
        for child in content:
            assert child.tag == "byte" and list(child.attrib) == ["hex"] and len(child) == 0
            parts += [bytes.fromhex(child.get("hex")), (child.tail or "").encode()]
        data = b"".join(parts)
        assert data[:1] == b"\n" and data[-1:] == b"\n"
        out.append((int(d.get("index")), fb.unshow_path((source.text or "").encode()), data[1:-1]))
    # a second parser (minidom) reads the same characters between the <byte/> elements
    dom = xml.dom.minidom.parseString(doc)
    texts = ["".join(n.data for n in c.childNodes if n.nodeType in (n.TEXT_NODE, n.CDATA_SECTION_NODE))
             for c in dom.getElementsByTagName("document_content")]
    assert texts == ["".join([c.text or ""] + [x.tail or "" for x in c]) for c in root.iter("document_content")]
    return out


def read_json(doc: bytes) -> list[tuple[bytes, bytes]]:
    """(path, content): content as a str, lone surrogates \\udcNN standing
    for byte NN (Python: .encode("utf-8", "surrogateescape"))."""
    files = json.loads(doc)
    assert isinstance(files, list)
    out = []
    for f in files:
        assert list(f) == ["path", "content"]
        out.append((fb.unshow_path(f["path"].encode()), f["content"].encode("utf-8", "surrogateescape")))
    return out


def read_plain(doc: bytes) -> list[tuple[bytes, bytes]]:
    """(path, content) of a plain document whose contents hold no "---" line end pair."""
    out, at = [], 0
    if not doc:
        return out
    doc += b"\n"
    while at < len(doc):
        nl = doc.index(b"\n", at)
        path = doc[at:nl]
        assert doc[nl:nl + 5] == b"\n---\n"
        end = doc.index(b"\n\n---\n", nl + 5)
        out.append((fb.unshow_path(path), doc[nl + 5:end]))
        at = end + 6
    return out


def _md_normalise(content: bytes) -> str:
    text = content.replace(b"\r\n", b"\n").replace(b"\r", b"\n").decode("utf-8", "replace")
    return text.replace("\0", "\ufffd")


def read_markdown(doc: bytes) -> list[tuple[str, str]]:
    """(heading code span, fence content) as markdown-it-py reads them."""
    tokens = MarkdownIt("commonmark").parse(doc.decode("utf-8", "replace"))
    headings = [tokens[i + 1].children for i, t in enumerate(tokens) if t.type == "heading_open"]
    fences = [t.content for t in tokens if t.type == "fence"]
    assert len(headings) == len(fences)
    spans = [c[0].content if c and c[0].type == "code_inline" else "".join(x.content for x in c) for c in headings]
    return list(zip(spans, fences))


def expected_body(content: bytes, raw: bool, line_numbers: bool) -> bytes:
    body = content if raw else fb.text_of(content)
    return fb.numbered(body) if line_numbers else body


def unnumber(body: bytes) -> bytes:
    """A numbered body without its numbers (lines ending at LF, CR LF, lone CR)."""
    lines = re.findall(rb"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+", body)
    width = len(str(len(lines)))
    out = []
    for n, line in enumerate(lines, 1):
        assert line[:width + 2] == b"%*d  " % (width, n)
        out.append(line[width + 2:])
    return b"".join(out)


def check_round_trip(doc: bytes, items: list[tuple[bytes, bytes]], fmt: str, raw: bool, line_numbers: bool) -> None:
    """Parse `doc` with its format's parser: each item's path and body back."""
    bodies = [expected_body(c, raw, line_numbers) for _, c in items]
    paths = [p for p, _ in items]
    if line_numbers:
        for body, (_, c) in zip(bodies, items):
            assert unnumber(body) == (c if raw else fb.text_of(c))
    if not raw:
        doc.decode("utf-8")          # text documents are valid UTF-8
    if fmt == "xml":
        got = read_xml(doc)
        assert [i for i, _, _ in got] == list(range(1, len(items) + 1))
        assert [(p, c) for _, p, c in got] == list(zip(paths, bodies))
    elif fmt == "json":
        assert read_json(doc) == list(zip(paths, bodies))
    elif fmt == "plain":
        if not any(b"---" in b or b"\n" in p or b"\r" in p for p, b in zip(paths, bodies)):
            assert read_plain(doc) == list(zip(paths, bodies))
    else:
        got = read_markdown(doc)
        assert [s for s, _ in got] == [fb.shown_path(p).decode() if p else "(empty path)" for p in paths]
        if raw or all(b.isascii() for b in bodies):
            assert [f for _, f in got] == [_md_normalise(b + b"\n") for b in bodies]
        for p in paths:
            assert fb.unshow_path(fb.shown_path(p)) == p


# ---- shapes ---------------------------------------------------------------------------

ITEMS = [("src/a.py", "x = 1\n"), ("README", b"hi")]


def test_xml_shape(backends):
    assert both(backends, ITEMS, format="xml") == (
        b'<documents>\n<document index="1">\n<source>src/a.py</source>\n<document_content>\n'
        b"<![CDATA[x = 1\n]]>\n</document_content>\n</document>\n"
        b'<document index="2">\n<source>README</source>\n<document_content>\n<![CDATA[hi]]>\n'
        b"</document_content>\n</document>\n</documents>")


def test_json_shape(backends):
    assert both(backends, ITEMS, format="json") == (
        b'[\n{"path": "src/a.py", "content": "x = 1\\n"},\n{"path": "README", "content": "hi"}\n]')


def test_plain_shape_is_files_to_prompts(backends):
    assert both(backends, ITEMS, format="plain") == b"src/a.py\n---\nx = 1\n\n\n---\nREADME\n---\nhi\n\n---"


def test_markdown_is_unchanged_by_default(backends):
    assert both(backends, ITEMS) == both(backends, ITEMS, format="markdown") == (
        b"### `src/a.py`\n\n```py\nx = 1\n\n```\n\n---\n\n### `README`\n\n```\nhi\n```")


@pytest.mark.parametrize("fmt, empty", [("markdown", b""), ("plain", b""), ("xml", b"<documents>\n</documents>"),
                                        ("json", b"[\n]")])
def test_no_items(backends, fmt, empty):
    assert both(backends, [], format=fmt) == empty


def test_xml_escapes(backends):
    doc = both(backends, [("a&<b>.x", b"]]></document_content>\r\n\x00\x1b\t\xef\xbf\xbe<&>")], format="xml", raw=True)
    assert b"<source>a&amp;&lt;b&gt;.x</source>" in doc
    assert (b"<![CDATA[]]]]>&gt;<![CDATA[</document_content>]]>&#13;<![CDATA[\n]]>"
            b'<byte hex="00"/><byte hex="1b"/><![CDATA[\t]]><byte hex="ef"/><byte hex="bf"/><byte hex="be"/>'
            b"<![CDATA[<&>]]>") in doc
    assert read_xml(doc)[0][2] == b"]]></document_content>\r\n\x00\x1b\t\xef\xbf\xbe<&>"


def test_json_escapes_and_surrogateescape(backends):
    doc = both(backends, [("p\\q\n", b'"\\\x00\x1f\b\f\t\r\n\x7f\xff\xc3\xa9')], format="json", raw=True)
    assert doc == b'[\n{"path": "p\\\\\\\\q\\\\x0a", "content": "\\"\\\\\\u0000\\u001f\\b\\f\\t\\r\\n\x7f\\udcff\xc3\xa9"}\n]'
    assert read_json(doc) == [(b"p\\q\n", b'"\\\x00\x1f\b\f\t\r\n\x7f\xff\xc3\xa9')]


@pytest.mark.parametrize("raw", [False, True])
def test_json_escapes_at_every_place_of_the_writers_buffer(backends, raw):
    """An escape (6 bytes) or a UTF-8 sequence right after a 16-byte block
    step, wherever that step leaves the writer's 8 KiB stack buffer: the
    native writer once wrote past its end there (a crash, or a document
    short of a byte). Both paths give the same valid document."""
    for lead in range(1, 16):
        for pad in range(8120 - lead, 8200 - lead, 3):
            for stop in (b"\x01", "é".encode(), b"\xff", b'"'):
                body = b'"' * lead + b"a" * pad + stop + b"b" * 40 + b"\n"
                doc = both(backends, [("f.txt", body)], format="json", raw=raw)
                assert read_json(doc) == [(b"f.txt", body if raw or stop != b"\xff" else body.replace(b"\xff", "\ufffd".encode()))]


def test_bad_format():
    with pytest.raises(ValueError):
        slopfast.build_markdown([], format="yaml")


def test_bad_format_parameter_on_the_wire(needs_native):
    for key, value in (("format", "yaml"), ("open", "2"), ("raw", "x"), ("first_index", "-1")):
        with pytest.raises(PipelineError) as exc:
            slopfast.native.run([("aggregate", {key: value})], [])
        assert exc.value.code == wire.CODE_BAD_PARAM


# ---- text content ---------------------------------------------------------------------

def test_utf8_bom_is_dropped(backends):
    doc = both(backends, [("a", b"\xef\xbb\xbfhi")], format="json")
    assert read_json(doc) == [(b"a", b"hi")]
    assert read_json(both(backends, [("a", b"\xef\xbb\xbfhi")], format="json", raw=True)) == [(b"a", b"\xef\xbb\xbfhi")]


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
def test_utf16_and_utf32_with_a_bom_are_written_as_utf8(backends, codec):
    text = "héllo 𝄞 wörld\r\n"
    bom = {"utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE,
           "utf-32-le": codecs.BOM_UTF32_LE, "utf-32-be": codecs.BOM_UTF32_BE}[codec]
    for fmt in FORMATS:
        doc = both(backends, [("u.txt", bom + text.encode(codec))], format=fmt)
        assert text.encode() in doc or fmt in ("json", "xml")
    assert read_json(both(backends, [("u.txt", bom + text.encode(codec))], format="json")) == [(b"u.txt", text.encode())]


def test_utf16_file_is_text_not_binary_unless_raw(backend, tmp_path):
    root = tmp_path / "t"
    root.mkdir()
    (root / "wide.txt").write_bytes(codecs.BOM_UTF16_LE + "wide text\n".encode("utf-16-le"))
    (root / "nul.bin").write_bytes(b"x\0y")
    out = io.BytesIO()
    report = slopfast.aggregate_paths([root], out, format="json")
    assert [os.path.basename(p) for p, _ in report.files] == ["wide.txt"]
    assert [s.reason for s in report.skipped] == ["binary"]
    assert read_json(out.getvalue()) == [(os.fsencode(root / "wide.txt"), b"wide text\n")]
    report = slopfast.aggregate_paths([root], io.BytesIO(), format="json", raw=True)
    assert report.files == [] and sorted(s.reason for s in report.skipped) == ["binary", "binary"]


def test_invalid_utf8_is_replacement_by_default(backends):
    bad = b"a\xffb\xe2\x82c\xed\xa0\x80d\xf4\x90\x80\x80"
    assert read_json(both(backends, [("x", bad)], format="json")) == [(b"x", bad.decode("utf-8", "replace").encode())]


# ---- line numbers ----------------------------------------------------------------------

@pytest.mark.parametrize("body, numbered", [
    (b"", b""), (b"a", b"1  a"), (b"a\n", b"1  a\n"), (b"a\nb", b"1  a\n2  b"), (b"\n\n", b"1  \n2  \n"),
    (b"a\r\nb\rc\n", b"1  a\r\n2  b\r3  c\n"),
    (b"a\r\nb\r\n", b"1  a\r\n2  b\r\n"), (b"a\r\n\r", b"1  a\r\n2  \r"), (b"\r", b"1  \r"),
    (b"x\n" * 10, b"".join(b"%2d  x\n" % i for i in range(1, 11))),
])
def test_line_numbers(backends, body, numbered):
    assert read_json(both(backends, [("f", body)], format="json", line_numbers=True)) == [(b"f", numbered)]
    assert fb.numbered(body) == numbered


def test_line_numbers_keep_the_fence_safe(backends):
    doc = both(backends, [("f.md", "```\nx\n```\n")], line_numbers=True)
    assert doc == b"### `f.md`\n\n```md\n1  ```\n2  x\n3  ```\n\n```"


def test_summaries_are_not_numbered(backends):
    content = "".join(f"line {i}\n" for i in range(30))
    doc = both(backends, [("t.txt", content)], mode="summary", line_numbers=True, format="json")
    assert read_json(doc)[0][1] == fb_summary.generic_summary(content.encode())


# ---- round trips on corpora and generated items ------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("line_numbers", [False, True])
def test_rust_book_round_trips(backends, fmt, line_numbers):
    items = [(os.fsencode(p.relative_to(DATA)), p.read_bytes()) for p in RUST_BOOK]
    doc = both(backends, items, format=fmt, line_numbers=line_numbers)
    check_round_trip(doc, items, fmt, False, line_numbers)


@pytest.mark.parametrize("fmt", FORMATS)
def test_commonmark_spec_examples_round_trip(backends, fmt):
    examples = json.loads(SPEC.read_text())
    items = [(f"spec/{e['section']}/{e['example']}.md".encode(), e["markdown"].encode()) for e in examples]
    items.append((b"spec.md", (DATA / "commonmark" / "commonmark-spec-0.31.2.md").read_bytes()))
    for raw in (False, True):
        doc = both(backends, items, format=fmt, raw=raw)
        check_round_trip(doc, items, fmt, raw, False)


PIECES = [b"]]>", b"</document_content>", b"]]", b"]", b">", b"\r\n", b"\r", b"\n", b"\x00", b"\x01", b"\x1b",
          b"\x7f", b"\t", b"\xef\xbf\xbe", b"\xef\xbf\xbf", b"\xc3\xa9", b"\xf0\x9d\x84\x9e", b'"', b"\\", b"<", b"&",
          b"```", b"---", b"\xed\xa0\x80", b"\xff", b"\xe2\x82", b"\xef\xbb\xbf", b"x", b" ", b"<document>", b"\\udcff"]
contents = st.one_of(
    st.binary(max_size=200),
    st.lists(st.sampled_from(PIECES), max_size=30).map(b"".join),
    st.tuples(st.sampled_from([codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_LE,
                               codecs.BOM_UTF32_BE]), st.binary(max_size=60)).map(b"".join),
    st.tuples(st.sampled_from(["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"]),
              st.text(max_size=40)).map(lambda t: {"utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE,
                                                   "utf-32-le": codecs.BOM_UTF32_LE, "utf-32-be": codecs.BOM_UTF32_BE}
                                        [t[0]] + t[1].encode(t[0], "surrogatepass")),
)
paths = st.one_of(st.binary(max_size=30), st.lists(st.sampled_from(PIECES + [b"a", b"/", b".py"]), max_size=8).map(b"".join))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=st.lists(st.tuples(paths, contents), max_size=6), fmt=st.sampled_from(FORMATS),
       raw=st.booleans(), line_numbers=st.booleans())
def test_generated_items_round_trip_native_equals_fallback(backends, items, fmt, raw, line_numbers):
    doc = both(backends, items, format=fmt, raw=raw, line_numbers=line_numbers)
    check_round_trip(doc, items, fmt, raw, line_numbers)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=contents)
def test_text_of_is_pythons_codecs(needs_native, data):
    """The C decoder (BOM, UTF-16/32, U+FFFD) against Python's codecs, through json."""
    doc = agg._native([Input(b"f", data)], wire.MODE_FULL, {}, style=agg.Style("json")).document
    assert read_json(doc) == [(b"f", fb.text_of(data))]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=st.lists(st.tuples(paths, contents), max_size=5), mode=st.sampled_from(["summary", "skeleton"]),
       fmt=st.sampled_from(FORMATS), raw=st.booleans())
def test_generated_summaries_native_equals_fallback(backends, items, mode, fmt, raw):
    both(backends, [(p, c, "full" if i % 2 else None) for i, (p, c) in enumerate(items)], mode=mode, format=fmt, raw=raw)


# ---- several requests, streams ------------------------------------------------------------

def _native(inputs, style, **kwargs):
    return agg._native(inputs, wire.MODE_FULL, {}, style=style, **kwargs)


def _fallback(inputs, style, **kwargs):
    return fb.build(inputs, wire.MODE_FULL, {}, fb_summary.summarise, **kwargs, **style.kwargs())


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("limit", [1, 2, 5])
def test_several_requests_give_one_document(needs_native, monkeypatch, fmt, limit):
    inputs = [Input(f"f{i}".encode(), f"{i}\n]]>\r".encode()) for i in range(7)]
    inputs.insert(3, Input(b"/nonexistent/x"))
    style = agg.Style(fmt, False, True)
    whole = _native(inputs, style)
    assert whole == _fallback(inputs, style)
    monkeypatch.setattr(fb, "LIMIT_INPUTS", limit)
    assert _native(inputs, style) == whole


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_document_in_pieces_is_the_document(needs_native, fmt):
    """open on the first request, close on the last, first_index and continues
    in between: the same bytes as one request, on both paths."""
    inputs = [Input(f"f{i}".encode(), f"body {i}\n".encode()) for i in range(6)]
    style = agg.Style(fmt)
    for run in (_native, _fallback):
        whole = run(inputs, style).document
        pieces = [run(inputs[:2], style, close=False),
                  run(inputs[2:5], style, continues=True, open=False, close=False, first_index=3),
                  run([], style, continues=True, open=False, close=False, first_index=6),
                  run(inputs[5:], style, continues=True, open=False, close=False, first_index=6),
                  run([], style, continues=True, open=False, close=True, first_index=7)]
        assert b"".join(p.document for p in pieces) == whole


def _tree(root: Path) -> list[tuple[bytes, bytes]]:
    files = {"a.py": b"def f():\n    return 1\n", "sub/b.md": b"# B\n\n```\nx\n```\n", "sub/c.txt": b"c]]>\r\n",
             "w.txt": codecs.BOM_UTF16_BE + "wide".encode("utf-16-be"), "bad.txt": b"\xff\xfex\x00",
             "img.bin": b"\0\1\2", "big.txt": b"z" * 5000, "e": b""}
    for i in range(70):
        files[f"many/f{i:02}.txt"] = f"file {i}\n".encode()
    for name, content in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content)
    return files


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("raw", [False, True])
def test_aggregate_paths_streams_every_format(backends, tmp_path, fmt, raw):
    """Several batches (70+ files: the first batch is 32), native == fallback,
    the document parses back, and equals build_markdown's plus a newline."""
    root = tmp_path / "t"
    files = _tree(root)

    def run():
        out = io.BytesIO()
        with open(tmp_path / f"out-{fmt}", "wb") as f:
            report = slopfast.aggregate_paths([root], f.fileno(), max_file_size=4096, format=fmt, raw=raw,
                                              line_numbers=True)
        slopfast.aggregate_paths([root], out, max_file_size=4096, format=fmt, raw=raw, line_numbers=True)
        assert (tmp_path / f"out-{fmt}").read_bytes() == out.getvalue()
        return out.getvalue(), report

    (doc, report), (doc2, report2) = backends(run)
    assert doc == doc2 and report.files == report2.files
    names = [p for p, _ in report.files]
    assert doc == slopfast.build_markdown(names, as_bytes=True, format=fmt, raw=raw, line_numbers=True) + b"\n"
    prefix = str(root) + "/"
    taken = [(os.fsencode(p), files[p[len(prefix):]]) for p in names]
    assert len(taken) == len(files) - (4 if raw else 2)   # img.bin, big.txt; raw: the BOM files too
    check_round_trip(doc[:-1], taken, fmt, raw, True)


@pytest.mark.parametrize("fmt", FORMATS)
def test_aggregate_paths_of_nothing(backend, tmp_path, fmt):
    out = io.BytesIO()
    report = slopfast.aggregate_paths([tmp_path], out, format=fmt)
    assert report.files == []
    assert out.getvalue() == {"markdown": b"", "plain": b"", "xml": b"<documents>\n</documents>\n", "json": b"[\n]\n"}[fmt]
    if fmt == "json":
        assert json.loads(out.getvalue()) == []


def test_stream_write_error_in_xml(needs_native, tmp_path):
    if not os.path.exists("/dev/full"):
        pytest.skip("Linux /dev/full")
    with pytest.raises(OSError) as exc:
        slopfast.aggregate_paths([Path(__file__).parent / "data" / "rust-book"], "/dev/full", format="xml")
    assert exc.value.errno == errno.ENOSPC


# ---- the tree and summary line at the end ------------------------------------------------

TREE_ITEMS = [("src/a.py", "x = 1\n"), ("src/lib/b.rs", "b"), ("src/lib/c/d.rs", "b"), ("README", "r"),
              ("docs/x\ny.md", "```\n")]
TREE = "src/\n  a.py\n  lib/\n    b.rs\n    c/\n      d.rs\nREADME\ndocs/\n  x\\x0ay.md\n"


def test_tree_in_each_format(backends):
    md = both(backends, TREE_ITEMS, tree=True)
    assert md == both(backends, TREE_ITEMS) + b"\n\n---\n\n## Files\n\n```\n" + TREE.encode() + b"```\n\n5 files, 13 bytes"
    xml_doc = both(backends, TREE_ITEMS, format="xml", tree=True)
    root = ET.fromstring(xml_doc)
    assert [c.tag for c in root] == ["document"] * 5 + ["files", "summary"]
    assert root[5].text == "\n" + TREE and root[6].text == "5 files, 13 bytes"
    assert read_xml(xml_doc.replace(xml_doc[xml_doc.index(b"\n<files>"):xml_doc.index(b"\n</documents>")], b"")) == \
        read_xml(both(backends, TREE_ITEMS, format="xml"))
    obj = json.loads(both(backends, TREE_ITEMS, format="json", tree=True))
    assert list(obj) == ["files", "tree", "summary"] and obj["tree"] == TREE and obj["summary"] == "5 files, 13 bytes"
    assert obj["files"] == json.loads(both(backends, TREE_ITEMS, format="json"))
    plain = both(backends, TREE_ITEMS, format="plain", tree=True)
    assert plain == both(backends, TREE_ITEMS, format="plain") + b"\nFiles:\n" + TREE.encode() + b"5 files, 13 bytes"


@pytest.mark.parametrize("fmt, empty", [("markdown", b"## Files\n\n```\n```\n\n0 files, 0 bytes"),
                                        ("xml", b"<documents>\n<files>\n</files>\n<summary>0 files, 0 bytes</summary>\n</documents>"),
                                        ("json", b'{"files": [\n], "tree": "", "summary": "0 files, 0 bytes"}'),
                                        ("plain", b"Files:\n0 files, 0 bytes")])
def test_tree_of_nothing(backends, fmt, empty):
    assert both(backends, [("/missing/file", None)], format=fmt, tree=True) == empty


def test_tree_shares_the_common_directories_and_counts_one(backends):
    doc = both(backends, [("/tmp/t/a", "1")], format="plain", tree=True)
    assert doc.endswith(b"Files:\n/tmp/t/\n  a\n1 file, 1 byte")
    doc = both(backends, [("/tmp/t/a", "1"), ("/tmp/t/b/c", "22"), ("/tmp/t/b/d", "")], format="plain", tree=True)
    assert doc.endswith(b"Files:\n/tmp/t/\n  a\n  b/\n    c\n    d\n3 files, 3 bytes")


def read_tree(tree: bytes) -> list[bytes]:
    """The shown paths of a tree (names that start with a space excepted: their indentation is ambiguous)."""
    stack: list[tuple[int, bytes]] = []     # (indent, directory prefix)
    out = []
    for line in tree.split(b"\n")[:-1]:
        name = line.lstrip(b" ")
        indent = len(line) - len(name)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        prefix = stack[-1][1] if stack else b""
        if name.endswith(b"/"):
            stack.append((indent, prefix + name))
        else:
            out.append(prefix + name)
    return out


# (no name starts with a space: its indentation would be ambiguous; the sections hold the exact paths)
tree_paths = st.lists(st.sampled_from(["a", "b", "c.py", "d/", "/", "x\n", "\\", "`", "é", "```", "&<"]),
                      min_size=1, max_size=6).map("".join)


def tree_of(doc: bytes, fmt: str) -> tuple[bytes, bytes]:
    """(tree, summary line) of a document written with tree=True, by its format's parser."""
    if fmt == "json":
        obj = json.loads(doc)
        return obj["tree"].encode(), obj["summary"].encode()
    if fmt == "xml":
        root = ET.fromstring(doc)
        return root.find("files").text.encode()[1:], root.find("summary").text.encode()
    if fmt == "markdown":
        tokens = MarkdownIt("commonmark").parse(doc.decode())
        return tokens[-4].content.encode(), tokens[-2].content.encode()   # fence, paragraph
    tree = doc[doc.rindex(b"Files:\n") + 7:]
    cut = tree.rfind(b"\n") + 1
    return tree[:cut], tree[cut:]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(tree_paths, max_size=8), fmt=st.sampled_from(FORMATS))
def test_generated_trees_native_equals_fallback_and_read_back(backends, names, fmt):
    items = [(n, "x") for n in names]
    doc = both(backends, items, format=fmt, tree=True)
    tree, summary = tree_of(doc, fmt)
    assert summary == b"%d file%s, %d byte%s" % (len(names), b"" if len(names) == 1 else b"s",
                                                 len(names), b"" if len(names) == 1 else b"s")
    assert read_tree(tree) == [fb.shown_path(n.encode()) for n in names]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("limit", [1, 3])
def test_tree_over_several_requests(needs_native, monkeypatch, fmt, limit):
    inputs = [Input(f"d{i % 3}/f{i}".encode(), b"x" * i) for i in range(7)]
    style = agg.Style(fmt, tree=True)
    whole = _native(inputs, style)
    assert whole == _fallback(inputs, style)
    monkeypatch.setattr(fb, "LIMIT_INPUTS", limit)
    assert _native(inputs, style) == whole


@pytest.mark.parametrize("fmt", FORMATS)
def test_aggregate_paths_tree(backends, tmp_path, fmt):
    root = tmp_path / "t"
    _tree(root)

    def run():
        out = io.BytesIO()
        report = slopfast.aggregate_paths([root], out, max_file_size=4096, format=fmt, tree=True)
        return out.getvalue(), report

    (doc, report), (doc2, _) = backends(run)
    assert doc == doc2
    names = [p for p, _ in report.files]
    assert doc == slopfast.build_markdown(names, as_bytes=True, format=fmt, tree=True) + b"\n"
    assert f"{len(names)} files, {sum(n for _, n in report.files)} bytes".encode() in doc
    assert (str(root) + "/\n  a.py\n").encode() in doc.replace(b"\\n", b"\n")


def test_the_docs_examples_are_the_output():
    """docs/build-markdown.md shows each format's document of the same two items: they are what is written."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "build-markdown.md").read_text()
    tokens = MarkdownIt("commonmark").parse(text)
    examples, heading = {}, None
    for i, t in enumerate(tokens):
        if t.type == "heading_open" and t.tag == "h3":
            heading = tokens[i + 1].content
        elif t.type == "fence" and heading in FORMATS and heading not in examples:
            examples[heading] = t.content
    assert sorted(examples) == sorted(FORMATS)
    for fmt, shown in examples.items():
        doc = slopfast.build_markdown(ITEMS, format=fmt)
        assert doc + "\n" == shown, fmt   # (a fence's content ends with its last line's LF)
