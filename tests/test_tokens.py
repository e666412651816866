"""Token counts: native (lib/tokens.c) == fallback == tiktoken's
encode_ordinary, for o200k_base and cl100k_base, on the test corpora, the
standard library, generated Unicode text and hostile input; the Unicode
tables against tiktoken's own regex engine, code point by code point; the
rank file lookup and its error.

Offline: tiktoken is built from the rank files bpe-openai bundles (the test
extra installs both), with tiktoken's own patterns; nothing downloads."""
from __future__ import annotations

import gzip
import hashlib
import json
import re
import struct
import sysconfig
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import slopfast
from slopfast import native
from slopfast import tokens as api
from slopfast.errors import PipelineError
from slopfast.fallbacks import tokens as fb
from slopfast.wire import Input

from conftest import DATA

pytestmark = pytest.mark.each_backend

ROOT = Path(__file__).resolve().parent.parent
ENCODINGS = ["o200k_base", "cl100k_base"]
SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def tiktoken_encoding(name: str):
    return fb.encoding(name, lambda: api._ranks(name).ranks)


def oracle(text: str | bytes, name: str) -> int:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return len(tiktoken_encoding(name).encode_ordinary(text))


def native_counts(datas: list[bytes], name: str) -> list[int]:
    return api._run_native(datas, name, None)


@pytest.fixture(params=ENCODINGS)
def enc(request) -> str:
    return request.param


@pytest.fixture
def check(needs_native, enc):
    """check(texts): native == fallback == tiktoken for each text (str or bytes)."""

    def run(texts):
        texts = list(texts)
        want = [oracle(t, enc) for t in texts]
        datas = [api._prepare(t)[0] for t in texts]
        got = native_counts(datas, enc)
        bad = [(i, g, w) for i, (g, w) in enumerate(zip(got, want)) if g != w]
        assert not bad, [(texts[i][:200], g, w) for i, g, w in bad[:5]]
        assert api._run_fallback([api._prepare(t) for t in texts], enc, None) == want
        return want

    return run


# ---- tiktoken's own definitions --------------------------------------------------

def test_patterns_and_specials_are_tiktokens(monkeypatch):
    from tiktoken_ext import openai_public
    monkeypatch.setattr(openai_public, "load_tiktoken_bpe", lambda *a, **k: {})   # no download
    for name in ENCODINGS:
        spec = getattr(openai_public, name)()
        assert spec["pat_str"] == fb.PATTERNS[name]
        assert spec["special_tokens"] == fb.SPECIAL_TOKENS[name]


def test_the_bundled_rank_files_are_tiktokens():
    for name in ENCODINGS:
        path, data = api.find_rank_file(name)
        assert hashlib.sha256(data).hexdigest() == api.ENCODINGS[name][1], path


def test_the_api_is_exported():
    assert slopfast.count_tokens is api.count_tokens
    assert slopfast.count_tokens_many is api.count_tokens_many


# ---- the Unicode tables against tiktoken's regex engine ---------------------------

def _c_table() -> list[int]:
    text = (ROOT / "lib" / "tokens_unicode.h").read_text()
    stage1 = [int(v) for v in re.search(r"tok_uc_stage1\[\d+\] = \{(.*?)\};", text, re.S).group(1).split(",") if v.strip()]
    stage2 = [int(v) for v in re.search(r"tok_uc_stage2\[\d+\] = \{(.*?)\};", text, re.S).group(1).split(",") if v.strip()]
    return [stage2[stage1[cp >> 8] * 256 + (cp & 255)] for cp in range(0x110000)]


ALL_CODE_POINTS = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000)
BITS = {"L": 1, "N": 2, "S": 4, "UP": 8, "LO": 16}
CLASSES = {"L": r"\p{L}", "N": r"\p{N}", "S": r"\s", "UP": r"[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]",
           "LO": r"[\p{Ll}\p{Lm}\p{Lo}\p{M}]"}


def _engine_set(pattern: str) -> set[int]:
    """The code points tiktoken's regex engine matches with `pattern`:
    tiktoken drops text no match covers, so over byte-level ranks the
    decoded tokens are exactly the matched characters."""
    import tiktoken
    enc = tiktoken.Encoding("probe", pat_str=pattern, mergeable_ranks={bytes([b]): b for b in range(256)},
                            special_tokens={})
    return {ord(c) for c in enc.decode_bytes(enc.encode_ordinary(ALL_CODE_POINTS)).decode()}


@pytest.mark.parametrize("cls", list(CLASSES))
def test_unicode_tables_are_tiktokens_regex_engines(cls):
    table = _c_table()
    ours = {cp for cp, bits in enumerate(table) if bits & BITS[cls] and not 0xD800 <= cp < 0xE000}
    theirs = _engine_set(CLASSES[cls])
    assert ours == theirs, sorted(hex(c) for c in ours ^ theirs)[:20]


def test_the_tables_name_their_unicode_version():
    text = (ROOT / "lib" / "tokens_unicode.h").read_text()
    assert '#define TOK_UNICODE_VERSION "16.0.0"' in text
    assert "16.0.0" in (ROOT / "docs" / "tokens.md").read_text()


def test_contraction_case_folding_is_the_engines():
    """(?i:'s ...) in the regex engine: which characters match each letter
    (s also matches U+017F LONG S; the scanner assumes exactly these)."""
    for letter in "stmdrvel":
        theirs = _engine_set(f"(?i:{letter})")
        ours = {ord(letter), ord(letter.upper())} | ({0x17F} if letter == "s" else set())
        assert theirs == ours, (letter, sorted(hex(c) for c in theirs))


def _version_differences() -> list[str]:
    """Characters whose class differs between this Python's Unicode and the tables' 16.0."""
    table = _c_table()
    out = []
    for cp in range(0x110000):
        if 0xD800 <= cp < 0xE000:
            continue
        cat = unicodedata.category(chr(cp))
        bits = (1 if cat[0] == "L" else 0) | (2 if cat[0] == "N" else 0)
        if bits != table[cp] & 3:
            out.append(chr(cp))
    return out


def test_characters_where_unicode_versions_differ(check):
    diff = _version_differences()
    if unicodedata.unidata_version != "16.0.0":
        assert len(diff) > 1000, unicodedata.unidata_version   # e.g. 14.0 -> 16.0: Garay, Kawi, CJK ext. H...
    sample = diff[:: max(1, len(diff) // 400)]
    texts = []
    for c in sample:
        texts += [c, "a" + c, " " + c + "b", c + "'s", "1" + c + "2", "x" + c * 3 + " y"]
    texts.append("".join(sample))
    check(texts)


# ---- corpora --------------------------------------------------------------------

def test_rust_book(check):
    check(p.read_bytes() for p in sorted((DATA / "rust-book").rglob("*.md")))


def test_commonmark_spec(check):
    spec = DATA / "commonmark"
    check([(spec / "commonmark-spec-0.31.2.md").read_bytes()])
    examples = json.loads((spec / "commonmark-spec-0.31.2.json").read_text(encoding="utf-8"))
    check(ex["markdown"] for ex in examples)


def _stdlib_files() -> list[Path]:
    base = Path(sysconfig.get_paths()["stdlib"])
    return sorted(p for p in base.rglob("*.py") if "site-packages" not in p.relative_to(base).parts)


def test_stdlib_sample(check):
    files = _stdlib_files()
    check(p.read_bytes() for p in files[::25])


def test_stdlib_all(needs_native, enc):
    """Every .py file of the standard library (site-packages left out, ~31 MB),
    half of them in each encoding (tiktoken alone takes ~5 s per 31 MB; the
    sample above has both encodings on the same files)."""
    files = _stdlib_files()[ENCODINGS.index(enc)::2]
    datas = [p.read_bytes() for p in files]
    got = native_counts(datas, enc)
    want = [oracle(d, enc) for d in datas]
    bad = [(str(files[i]), g, w) for i, (g, w) in enumerate(zip(got, want)) if g != w]
    assert not bad, bad[:5]


# ---- generated text -------------------------------------------------------------

CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Re", "'rE", "'VE", "'vE",
                "'M", "'LL", "'lL", "'Ll", "'D", "'ſ", "'x", "'", "''", "'r", "'l"]
FRAGMENTS = CONTRACTIONS + [
    "\r\n", "\r", "\n", "\n\n", " \n ", "\t", "\u00a0", "\u2028", "\u3000", "\x0b", "\x0c", "\u0085",
    "    ", " " * 17, "\t \t", " \r\n\r\n  ", "123", "1234567", "٣٤٥", "Ⅻ", "½", "²",
    "e\u0301", "\u0301", "a\u0308\u0304", "\u20dd", "🎉", "👩‍💻", "🇫🇷", "日本語", "中文字符", "한국어",
    "Straße", "ǅ", "ǈungla", "HTTPServer", "getHTTPResponseCode", "ABC", "abc", "Abc", "x/y//z", "///\n",
    "?!", "...", " ...", "->", "::", "#", "'''", '"""', "$", "ʰ", "ˈ", "ء", "ا", "\u200d", "\ufeff", "\ufffd",
]
CATEGORY_CHARS = st.characters(codec="utf-8", categories=(
    "Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "No", "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po",
    "Sm", "Sc", "Sk", "So", "Zs", "Zl", "Zp", "Cc", "Cf", "Co", "Cn"))
PIECES = st.one_of(st.sampled_from(FRAGMENTS), st.text(CATEGORY_CHARS, max_size=6),
                   st.text(st.sampled_from("aZ09 '\n\r\t.é\u0301ſ"), max_size=12))
TEXTS = st.lists(PIECES, max_size=40).map("".join)


@SETTINGS
@given(texts=st.lists(TEXTS, min_size=1, max_size=8))
def test_generated_unicode_text(check, texts):
    check(texts)


@SETTINGS
@given(data=st.lists(st.binary(max_size=60), min_size=1, max_size=6))
def test_generated_bytes(check, data):
    check(data)


def test_fragments_each_and_joined(check):
    check(FRAGMENTS + ["".join(FRAGMENTS), " ".join(FRAGMENTS), "\n".join(FRAGMENTS)])
    check([a + b for a in FRAGMENTS for b in CONTRACTIONS])


def test_whitespace_runs(check):
    check([" " * n + tail for n in range(0, 40) for tail in ("", "x", "\n", "\n x", "1")] +
          ["\t" * n + "\r\n" * m + " " * k for n in range(4) for m in range(4) for k in range(4)])


def test_digit_runs(check):
    check(["1" * n for n in range(1, 30)] + ["a" + "9" * n + "b" for n in range(10)] + ["٣" * 7, "1²3½"])


def test_invalid_utf8(check):
    check([b"\xff", b"a\xffb", b"\xc3", b"\xc3(", b"\xe2\x82", b"\xe2\x82\xac", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
           b"\xc0\xaf", b"\xf0\x9f\x98", b"abc\xf0\x9f\x98 def", b"\x80" * 50, b"it\xe2\x80\x99s", b"x'\xffs"])


def test_lone_surrogates_read_as_tiktoken_reads_them(check, enc):
    texts = ["a\ud800b", "\udfff", "x\ud83d\ude00y"]
    check(texts)
    assert [api.count_tokens(t, enc) for t in texts] == [oracle(api._prepare(t)[1], enc) for t in texts]


def test_empty(check, enc):
    assert check(["", b"", " "]) == [0, 0, 1]
    assert api.count_tokens("", enc) == 0
    assert api.count_tokens_many([], enc) == []


def test_huge_inputs(check):
    """A few MB: text, one long word (the heap merge), one long run of punctuation, of spaces."""
    book = b"".join(p.read_bytes() for p in sorted((DATA / "rust-book").rglob("*.md")))
    check([book[:3_000_000], b"abcdefghij" * 100_000, b"x" * 300_000, b"!?#" * 100_000, b" " * 500_000,
           "日本語のテキスト".encode() * 20_000, b"1234567890" * 50_000])


# ---- the fast paths' edges (lib/tokens.c) ----------------------------------------
# The scanner decides a piece from ASCII alone when it can and leaves it to the
# general scanner when a non-ASCII character could take part; words are read 8
# bytes at a time; a piece's key is 16 bytes loaded and masked unless the text
# ends within 16 bytes; 2-byte pieces, runs of spaces over 16 bytes and pieces
# that must be merged (8 at a time, repeats sharing a merge) have paths of
# their own. These texts sit on those edges.

EDGE_WORDS = ["a", "ab", "abc", "abcdefg", "abcdefgh", "abcdefghi", "abcdefghijklmno", "abcdefghijklmnop",
              "abcdefghijklmnopq", "A", "AB", "ABCDEFGHI", "Abcdefgh", "aBcD", "getHTTPResponseCode", "xyz" * 7]
EDGE_AFTER = ["", "é", "\u0301", "ſ", "ǅ", "ʰ", "日", "ß", "Ω", "٣", "²", "—", "“", "\u00a0", "\u3000", "\u2028",
              "'s", "'S", "'ſ", "'ll", "'x", "'", "1", "123", "1234", " ", "  ", "\t", "\r\n", "\n\n", "/", "//\n",
              "(", ")\n", "...", "\ufffd", "🎉"]
EDGE_BEFORE = ["", " ", "(", "'", "\n", "\r", "\t", "_", "é", "1", "\u00a0", "  ", "ǅ", "—"]


def test_ascii_fast_path_edges(check):
    """Each word with a character before and after it, alone (the text ends
    at it: keys are copied, not loaded) and inside longer text."""
    texts = [b + w + a for b in EDGE_BEFORE for w in EDGE_WORDS for a in EDGE_AFTER]
    check(texts)
    check([" ".join(texts[i:i + 50]) + " tail of some words past sixteen bytes" for i in range(0, len(texts), 50)])


def test_digit_and_punctuation_edges(check):
    digits = ["1", "12", "123", "1234", "12٣", "12٣456", "1٣2345", "1²", "٣1", "1\u0301"]   # 12٣|456, not 12|٣45|6
    puncts = ["(", "((", "->", " (", " ((", "!?", "(\r\n", ")\n\n", "//", "/\n/", "(—", "(“x", "#!", " #",
              "'" * 3, ".\u0301"]
    tails = ["", "x", "é", " ", "\n", "1", "/", "(", "\u00a0", "'s"]
    check([a + t for a in digits + puncts for t in tails] + [t + a for a in digits + puncts for t in tails])


def test_space_and_line_break_edges(check):
    """Runs of spaces around the 8-byte steps and the 16-byte memo limit,
    with what may follow them (a run over 16 bytes is counted by length,
    once per request: the same runs repeat across the texts of one call)."""
    follow = ["", "x", "é", "\n", "\r\n", " \n", "\t", "\u00a0", "\u3000x", "(", "1", "\n\n  x", "\r\r\n"]
    lead = ["", "\n", "\r\n", "x", "\t", "\n\t"]
    texts = [l + " " * n + f for n in list(range(0, 80)) + [255, 256, 257, 300] for l in lead for f in follow]
    check(texts)
    check(["\n".join(" " * n + "x = 1" for n in range(80)) * 3, "\t \t\n" * 20 + "y", "\r\n" * 40, "\n" * 17 + " " * 17])


def test_merges_in_step(check):
    """Many pieces that are not tokens, repeated near each other (a repeat
    waits with the merge of its first), of every length up to 16 and over."""
    import random
    rng = random.Random(13)
    letters = "qxzjkvwfybpg"
    words = ["".join(rng.choice(letters) for _ in range(rng.randint(3, 20))) for _ in range(300)]
    text = " ".join(rng.choice(words[:40]) if rng.random() < 0.5 else rng.choice(words) for _ in range(5000))
    check([text, text.upper(), text.replace(" ", "_"), "\n".join(words)] + words)


def test_long_pieces_memo(check):
    """Pieces of 17 to 64 bytes are kept in a memo of their own, with a copy
    of their bytes that starts over when full: thousands of distinct long
    identifiers, each seen again, some sharing their first 16 bytes or
    their last 8."""
    import random
    rng = random.Random(17)
    stems = ["assertRaisesRegex", "getHTTPResponseCode", "incrementaldecoder", "x" * 17, "Qwertyuiopasdfghjklzxcvbnm"]
    words = [rng.choice(stems) + "".join(rng.choice("abcdefghij") for _ in range(rng.randint(0, 40))) for _ in range(3000)]
    words += ["".join(rng.choice("abcdefghij") for _ in range(rng.randint(0, 30))) + "ResponseCode" for _ in range(500)]
    rng.shuffle(words)
    text = " ".join(words + words[::-1])
    check([text, text.replace(" ", "\n"), "_".join(words[:800])])


@SETTINGS
@given(parts=st.lists(st.one_of(st.sampled_from(EDGE_WORDS + EDGE_AFTER + EDGE_BEFORE),
                                st.integers(0, 40).map(lambda n: " " * n)), max_size=30))
def test_generated_edges(check, parts):
    check(["".join(parts)])


# ---- the public functions (both backends) ----------------------------------------

def test_count_tokens(enc):
    for text in ["hello world", "Hello, world! It's 2026.\n\n    def f(x): return x\n", b"caf\xc3\xa9 \xff"]:
        assert api.count_tokens(text, enc) == oracle(text, enc)
    texts = ["a", "b c", "", "résumé", b"\xff\xfe"]
    assert api.count_tokens_many(texts, enc) == [oracle(t, enc) for t in texts]
    assert api.count_tokens("hello") == oracle("hello", "o200k_base")   # the default


def test_unknown_encoding():
    with pytest.raises(ValueError, match="unknown encoding 'p50k_base'"):
        api.count_tokens("x", "p50k_base")
    with pytest.raises(TypeError):
        api.count_tokens(3)


# ---- rank files ------------------------------------------------------------------

@pytest.fixture
def no_ranks(monkeypatch, tmp_path):
    """No rank file anywhere: an empty tiktoken cache, no bpe-openai."""
    monkeypatch.delenv(api.RANKS_ENV, raising=False)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(api, "_bpe_openai_file", lambda encoding: None)
    monkeypatch.setattr(api, "_read_cached_blob", lambda encoding: None)
    monkeypatch.setattr(api, "_image_path", lambda encoding, path: None)
    api._ranks_cached.cache_clear()
    yield tmp_path
    api._ranks_cached.cache_clear()


_bpe_openai_file = api._bpe_openai_file   # before no_ranks hides it


def _bundled(name: str) -> bytes:
    return gzip.decompress(Path(_bpe_openai_file(name)).read_bytes())


def test_no_rank_file_is_a_clear_error(no_ranks):
    with pytest.raises(api.TokenRanksError) as err:
        api.count_tokens("x")
    message = str(err.value)
    for option in (api.RANKS_ENV, "TIKTOKEN_CACHE_DIR", "bpe-openai", str(no_ranks / "cache")):
        assert option in message


def test_ranks_from_tiktokens_cache(no_ranks, monkeypatch):
    cache = no_ranks / "cache"
    cache.mkdir()
    url = api.ENCODINGS["cl100k_base"][0]
    (cache / hashlib.sha1(url.encode()).hexdigest()).write_bytes(_bundled("cl100k_base"))
    assert api.find_rank_file("cl100k_base")[0] == str(cache / hashlib.sha1(url.encode()).hexdigest())
    assert api.count_tokens("hello world", "cl100k_base") == 2


def test_ranks_from_the_named_directory_or_file(no_ranks, monkeypatch):
    folder = no_ranks / "ranks"
    folder.mkdir()
    (folder / "o200k_base.tiktoken").write_bytes(_bundled("o200k_base"))
    monkeypatch.setenv(api.RANKS_ENV, str(folder))
    assert api.find_rank_file("o200k_base")[0] == str(folder / "o200k_base.tiktoken")
    assert api.count_tokens("hello world") == 2
    gz = no_ranks / "mine.gz"
    gz.write_bytes(gzip.compress(_bundled("o200k_base")))
    monkeypatch.setenv(api.RANKS_ENV, str(gz))
    assert api.find_rank_file("o200k_base")[0] == str(gz)
    assert api.count_tokens("hello world", ranks=gz) == 2


def test_a_wrong_rank_file_is_refused(no_ranks, monkeypatch):
    bad = no_ranks / "o200k_base.tiktoken"
    bad.write_bytes(b"aGk= 0\n")
    monkeypatch.setenv(api.RANKS_ENV, str(bad))
    with pytest.raises(api.TokenRanksError, match="is not tiktoken's o200k_base rank file"):
        api.count_tokens("x")
    with pytest.raises(api.TokenRanksError, match="no rank file at"):
        api.count_tokens("x", ranks=no_ranks / "missing")


def test_parsed_ranks_are_cached_and_checked(monkeypatch, tmp_path):
    """The blob a rank file parses to is kept in the cache directory and read
    back; a cache file that does not check out is ignored and rewritten."""
    from slopfast import dispatch
    monkeypatch.delenv(api.RANKS_ENV, raising=False)
    monkeypatch.setattr(dispatch, "user_cache_dir", lambda: str(tmp_path))
    path = Path(api._blob_path("cl100k_base"))
    fresh = api._Ranks("cl100k_base", None)
    assert path.is_file() and api._read_cached_blob("cl100k_base") == fresh.blob
    parsed = []
    monkeypatch.setattr(api, "_parse_rank_file", lambda enc, data: parsed.append(enc) or _real_parse(enc, data))
    assert api._Ranks("cl100k_base", None).blob == fresh.blob and parsed == []
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    assert api._read_cached_blob("cl100k_base") is None
    again = api._Ranks("cl100k_base", None)
    assert parsed == ["cl100k_base"] and again.blob == fresh.blob and again.ranks == fresh.ranks
    assert api._read_cached_blob("cl100k_base") == fresh.blob
    path.write_bytes(path.read_bytes()[:-1])          # cut short: its length no longer checks
    assert api._read_cached_blob("cl100k_base") is None
    assert len(fresh.ranks) == 100256 and fresh.ranks[b"hello"] == tiktoken_encoding("cl100k_base").encode_single_token(b"hello")


_real_parse = api._parse_rank_file


# ---- the op on the wire ------------------------------------------------------------

def run_op(params: dict, inputs: list[Input]):
    return native.run([("tokens", params)], inputs)


def test_op_without_ranks_counts_pieces(needs_native):
    """No `ranks`: the pre-tokenizer's pieces (ASCII text, where Python's re agrees)."""
    text = "Hello, world! It's   2026:\n\n  x=12345;\n"
    import regex
    for name in ENCODINGS:
        part = run_op({"encoding": name}, [Input(b"t", text.encode())])[0]
        assert api._decode_counts(part) == [(len(regex.findall(fb.PATTERNS[name], text)),)]


def test_op_errors(needs_native):
    with pytest.raises(PipelineError) as err:
        run_op({"encoding": "gpt2"}, [Input(b"t", b"x")])
    assert err.value.code == 3 and "unknown encoding" in str(err.value)
    for blob in (b"\x05ab", b"\x00", b""):
        with pytest.raises(PipelineError) as err:
            run_op({"ranks": blob}, [Input(b"t", b"x")])
        assert err.value.code == 3 and "ranks" in str(err.value)


@SETTINGS
@given(blob=st.binary(max_size=400), data=st.binary(max_size=200))
def test_op_survives_any_ranks(needs_native, blob, data):
    """Hostile ranks (any bytes, repeated tokens, missing single bytes): an
    error or some count, never a crash."""
    try:
        run_op({"ranks": blob}, [Input(b"t", data)])
    except PipelineError as err:
        assert err.code == 3


def test_small_vocabularies(needs_native):
    """A vocabulary without some single bytes counts each unknown byte as a part."""
    blob = b"".join(bytes((len(t),)) + t for t in (b"a", b"b", b"ab", b"ab", b"abab"))
    part = run_op({"ranks": blob}, [Input(b"t", b"abab"), Input(b"t", b"ababx"), Input(b"t", b"zz")])[0]
    assert api._decode_counts(part) == [(1,), (2,), (2,)]


# ---- the vocabulary built once (tokens_vocab_new, pipeline_context_attach) ------------

def test_vocab_and_ranks_in_the_request_agree(needs_native, enc):
    datas = [p.read_bytes() for p in sorted((DATA / "rust-book").rglob("*.md"))[:60]] + [b"", b"\xff x"]
    blob = api._ranks(enc).blob
    in_request = api._decode_counts(run_op({"encoding": enc, "ranks": blob}, [Input(b"t", d) for d in datas])[0])
    index = native.vocab_index(f"{enc}:None", lambda: blob)
    assert index is not None
    attached = api._decode_counts(run_op({"encoding": enc, "vocab": str(index)}, [Input(b"t", d) for d in datas])[0])
    assert attached == in_request == [(oracle(d, enc),) for d in datas]


def test_subprocess_transport_sends_the_ranks(needs_native, monkeypatch):
    monkeypatch.setenv("SLOPFAST_TRANSPORT", "subprocess")
    monkeypatch.setenv("SLOPFAST_BACKEND", "native")
    assert native.vocab_index("o200k_base:None", lambda: b"") is None
    assert api.count_tokens_many(["hello world", "x"]) == [2, 1]


def test_vocab_errors(needs_native):
    index = native.vocab_index("o200k_base:None", lambda: api._ranks("o200k_base").blob)
    with pytest.raises(PipelineError) as err:
        run_op({"vocab": str(index + 8)}, [Input(b"t", b"x")])
    assert err.value.code == 3 and "no vocabulary" in str(err.value)
    with pytest.raises(PipelineError) as err:
        run_op({"vocab": "0", "ranks": b"\x01a"}, [Input(b"t", b"x")])
    assert err.value.code == 3 and "both ranks and vocab" in str(err.value)
    # no context: pipeline_run has no vocabularies
    from slopfast import wire
    got = native.run_blob_opts(wire.encode_request([("tokens", {"vocab": "0"})], [Input(b"t", b"x")]))
    assert got.code == 3 and "no vocabulary 0 attached to this context (0 are)" in got.message
    lib = native._load()
    assert lib.vocab_new(b"\x05ab", 3) is None and lib.vocab_new(b"", 0) is None
    assert lib.context_attach(None, None) == -1


# ---- the vocabulary's image (tokens_vocab_image, tokens_vocab_adopt) ----------------

_IMAGE_HEAD = struct.Struct("<6Q")   # magic, slot bytes, count, cap, blob length, sum (lib/tokens.c)
M64 = (1 << 64) - 1


def _fmix(h: int) -> int:
    h = ((h ^ (h >> 33)) * 0xff51afd7ed558ccd) & M64
    h = ((h ^ (h >> 33)) * 0xc4ceb9fe1a85ec53) & M64
    return h ^ (h >> 33)


def _image_sum(image: bytes | bytearray) -> int:
    """tok_image_sum: Fletcher's two sums over the words after the head, in two lanes, mixed."""
    words = struct.unpack_from(f"<{(len(image) - _IMAGE_HEAD.size) // 8}Q", image, _IMAGE_HEAD.size)
    out = 0
    for lane, (ka, kb) in ((words[0::2], (0, 1)), (words[1::2], (2, 3))):
        a = b = 0
        for w in lane:
            a = (a + w) & M64
            b = (b + a) & M64
        out += _fmix(a ^ ka) + _fmix(b ^ kb)
    return out & M64


def _in_new_thread(fn):
    """fn() on a thread of its own: a context of its own, whose attached vocabularies the rest do not see."""
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn).result()


def _image_of(lib, enc: str) -> bytearray:
    blob = api._ranks(enc).blob
    vocab = lib.vocab_new(blob, len(blob))
    size = lib.vocab_image(vocab, None, 0)
    buffer = native.ctypes.create_string_buffer(size)
    assert lib.vocab_image(vocab, buffer, size) == size
    lib.vocab_free(vocab)
    return bytearray(buffer.raw)


def _adopts(lib, tmp_path, image: bytes | bytearray) -> bool:
    path = tmp_path / "image.vocab"
    path.write_bytes(bytes(image))
    vocab = native._adopt_image(lib, str(path))
    if vocab:
        _drop(lib, vocab)
    return bool(vocab)


def _drop(lib, vocab) -> None:
    """Free an adopted vocabulary, then its mapping (the last in lib.images)."""
    lib.vocab_free(vocab)
    image, view = lib.images.pop()
    del view
    image.close()


def test_an_image_counts_as_the_vocabulary_it_was_made_of(needs_native, enc, tmp_path):
    """The first process builds the vocabulary and keeps its image; the next
    adopts the image, and counts the same, tiktoken's counts."""
    lib = native._load()
    datas = [p.read_bytes() for p in sorted((DATA / "rust-book").rglob("*.md"))[:60]] + [b"", b"\xff x", b"a" * 300]
    path = tmp_path / "v.vocab"
    blob = api._ranks(enc).blob

    def counts(key: str):
        index = native.vocab_index(f"{key}:{tmp_path}", lambda: blob, str(path))
        return api._decode_counts(run_op({"encoding": enc, "vocab": str(index)}, [Input(b"t", d) for d in datas])[0])

    mapped = len(lib.images)
    built = _in_new_thread(lambda: counts("built"))
    assert path.is_file() and len(lib.images) == mapped
    adopted = _in_new_thread(lambda: counts("adopted"))
    assert len(lib.images) == mapped + 1
    assert built == adopted == [(oracle(d, enc),) for d in datas]
    image = path.read_bytes()
    assert _IMAGE_HEAD.unpack_from(image)[5] == _image_sum(image)   # the test's sum is the library's


def test_a_damaged_image_is_refused(needs_native, tmp_path):
    """Cut, lengthened, or any byte changed (the head's fields, the blob, the
    pad, the offsets, the slots): refused, then built anew."""
    lib = native._load()
    image = _image_of(lib, "cl100k_base")
    assert _adopts(lib, tmp_path, image)
    _, _, count, cap, blob_len, _ = _IMAGE_HEAD.unpack_from(image)
    slots = len(image) - cap * 16
    spots = [0, 8, 16, 24, 32, 40, 48, 48 + blob_len - 1, 48 + blob_len + 3, slots - 4, slots, slots + 9, len(image) - 1]
    for at in spots + list(range(48, len(image), len(image) // 40)):
        bad = bytearray(image)
        bad[at] ^= 0x10
        assert not _adopts(lib, tmp_path, bad), at
    for bad in (image[:-16], image + bytes(16), image[:48], b"", bytes(len(image))):
        assert not _adopts(lib, tmp_path, bad)


def test_a_forged_image_is_refused_by_what_lookups_read(needs_native, tmp_path):
    """With its sum made right: a slot's rank past the tokens, an offset that
    is not its token's, a length that breaks the blob's run, a slot too many
    or too few: refused. Bytes inside a long token change only counts."""
    lib = native._load()
    image = _image_of(lib, "cl100k_base")
    _, _, count, cap, blob_len, _ = _IMAGE_HEAD.unpack_from(image)
    offsets, slots = len(image) - cap * 16 - count * 4, len(image) - cap * 16
    slot = next(i for i in range(cap) if struct.unpack_from("<I", image, slots + 16 * i + 8)[0])
    empty = next(i for i in range(cap) if not struct.unpack_from("<I", image, slots + 16 * i + 8)[0])

    def forged(at: int, fmt: str, value: int) -> bytearray:
        bad = bytearray(image)
        struct.pack_into(fmt, bad, at, value)
        struct.pack_into("<Q", bad, 40, _image_sum(bad))
        return bad

    assert _adopts(lib, tmp_path, forged(0, "<Q", _IMAGE_HEAD.unpack_from(image)[0]))   # the sum alone: adopted
    assert not _adopts(lib, tmp_path, forged(slots + 16 * slot + 8, "<I", count + 1))
    assert not _adopts(lib, tmp_path, forged(slots + 16 * slot + 8, "<I", 0))
    assert not _adopts(lib, tmp_path, forged(slots + 16 * empty + 8, "<I", 1))
    assert not _adopts(lib, tmp_path, forged(offsets + 4 * 7, "<I", 1))
    assert not _adopts(lib, tmp_path, forged(48, "B", 2))
    assert not _adopts(lib, tmp_path, forged(16, "<Q", count + 1))
    assert not _adopts(lib, tmp_path, forged(24, "<Q", cap // 2))
    long_at = max(range(count), key=lambda r: image[48 + struct.unpack_from("<I", image, offsets + 4 * r)[0] - 1])
    start = struct.unpack_from("<I", image, offsets + 4 * long_at)[0]
    assert _adopts(lib, tmp_path, forged(48 + start + 20, "B", image[48 + start + 20] ^ 1))


_SMALL_TOKENS = [bytes([b]) for b in range(256)] + [b"ab", b"abc", b"the", b" the", b"x" * 40, b"y" * 255]


@SETTINGS
@given(edits=st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), min_size=1, max_size=6),
       texts=st.lists(st.binary(max_size=300), max_size=4))
def test_any_adopted_image_counts_without_reading_outside_it(needs_native, tmp_path, edits, texts):
    """A small vocabulary's image with any bytes changed and its sum made
    right: refused, or adopted and counting (never a crash; the sanitizer
    build checks every read)."""
    lib = native._load()
    blob = b"".join(bytes((len(t),)) + t for t in _SMALL_TOKENS)
    vocab = lib.vocab_new(blob, len(blob))
    size = lib.vocab_image(vocab, None, 0)
    buffer = native.ctypes.create_string_buffer(size)
    lib.vocab_image(vocab, buffer, size)
    lib.vocab_free(vocab)
    image = bytearray(buffer.raw)
    for at, value in edits:
        image[at % len(image)] = value
    struct.pack_into("<Q", image, 40, _image_sum(image))
    path = tmp_path / "small.vocab"
    path.write_bytes(bytes(image))

    def count():
        vocab = native._adopt_image(lib, str(path))
        if not vocab:
            return None
        context = native._Context(lib)
        index = lib.context_attach(context.address, vocab)
        request = native.wire.encode_request([("tokens", {"vocab": str(index)})], [Input(b"t", t) for t in texts])
        lib.run_in(context.address, request, len(request))
        del context
        _drop(lib, vocab)
        return True

    count()


def test_a_cached_image_stands_for_the_rank_file(needs_native, monkeypatch, tmp_path):
    """check_ranks: an image in the cache, no rank file: no error (the image
    was made from one); without the image, or with the fallback forced, the
    rank file is looked for."""
    image = tmp_path / "o200k.vocab"
    image.write_bytes(b"x")
    monkeypatch.setattr(api, "_image_path", lambda encoding, path: str(image))
    looked = []
    monkeypatch.setattr(api, "_ranks", lambda encoding, path=None: looked.append(encoding))
    monkeypatch.delenv("SLOPFAST_BACKEND", raising=False)
    api.check_ranks("o200k_base", None)
    assert looked == []
    monkeypatch.setenv("SLOPFAST_BACKEND", "fallback")
    api.check_ranks("o200k_base", None)
    monkeypatch.delenv("SLOPFAST_BACKEND")
    image.unlink()
    api.check_ranks("o200k_base", None)
    assert looked == ["o200k_base", "o200k_base"]


def test_the_image_is_named_by_build_and_only_for_found_rank_files(needs_native, monkeypatch):
    monkeypatch.delenv(api.RANKS_ENV, raising=False)
    path = api._image_path("o200k_base", None)
    assert path.endswith(f"o200k_base-{api.ENCODINGS['o200k_base'][1][:16]}-{native.build_id()}.vocab")
    assert api._image_path("o200k_base", "/some/ranks") is None
    monkeypatch.setenv(api.RANKS_ENV, "/some/ranks")
    assert api._image_path("o200k_base", None) is None


def test_threads_share_a_vocabulary(needs_native, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor
    monkeypatch.setenv("SLOPFAST_BACKEND", "native")
    datas = [p.read_bytes() for p in sorted((DATA / "rust-book").rglob("*.md"))[:40]]
    want = [oracle(d, "o200k_base") for d in datas]
    with ThreadPoolExecutor(4) as pool:
        for got in pool.map(lambda _: api.count_tokens_many(datas), range(8)):
            assert got == want


def test_without_tiktoken_the_native_path_counts_alone(needs_native, monkeypatch):
    monkeypatch.setattr(api, "_have_tiktoken", lambda: False)
    monkeypatch.delenv("SLOPFAST_BACKEND", raising=False)
    assert api.count_tokens("hello world") == 2
    monkeypatch.setenv("SLOPFAST_BACKEND", "fallback")
    with pytest.raises(slopfast.BackendUnavailable, match=r"slopfast\[tokens\]"):
        api.count_tokens("hello world")
