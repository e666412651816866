"""The count cache (slopfast/count_cache.py, lib/aggregate.c's
sink_cached_body): counts with it equal counts without it and tiktoken's, on
the first run (counted, kept) and the next (taken from the cache); what is
kept is body_hash (SipHash-1-3 in two lanes) of each body and tiktoken's count of its rest; a
damaged file is ignored, a full one starts over, and off is off."""
from __future__ import annotations

import os
import struct
import tempfile
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import slopfast
from slopfast import count_cache, native
from conftest import require_native

M64 = (1 << 64) - 1


def _rotl(x: int, b: int) -> int:
    return ((x << b) | (x >> (64 - b))) & M64


def _sip(k0: int, k1: int, wide: bool) -> list[int]:
    return [k0 ^ 0x736f6d6570736575, k1 ^ 0x646f72616e646f6d ^ (0xee if wide else 0),
            k0 ^ 0x6c7967656e657261, k1 ^ 0x7465646279746573]


def _rounds(v: list[int], n: int) -> None:
    for _ in range(n):
        v[0] = (v[0] + v[1]) & M64; v[1] = _rotl(v[1], 13) ^ v[0]; v[0] = _rotl(v[0], 32)   # noqa: E702
        v[2] = (v[2] + v[3]) & M64; v[3] = _rotl(v[3], 16) ^ v[2]                           # noqa: E702
        v[0] = (v[0] + v[3]) & M64; v[3] = _rotl(v[3], 21) ^ v[0]                           # noqa: E702
        v[2] = (v[2] + v[1]) & M64; v[1] = _rotl(v[1], 17) ^ v[2]; v[2] = _rotl(v[2], 32)   # noqa: E702


def _word(v: list[int], m: int, c: int) -> None:
    v[3] ^= m
    _rounds(v, c)
    v[0] ^= m


def _out(v: list[int], tweak: int, d: int) -> int:
    v[2] ^= tweak
    _rounds(v, d)
    return v[0] ^ v[1] ^ v[2] ^ v[3]


def _last_word(msg: bytes) -> int:
    return (len(msg) & 0xff) << 56 | int.from_bytes(msg[len(msg) - len(msg) % 8:], "little")


def siphash(key: bytes, msg: bytes, wide: bool = True, c: int = 1, d: int = 3) -> bytes:
    """SipHash-c-d as its paper defines it (64- or 128-bit output)."""
    v = _sip(int.from_bytes(key[:8], "little"), int.from_bytes(key[8:], "little"), wide)
    for i in range(0, len(msg) - len(msg) % 8, 8):
        _word(v, int.from_bytes(msg[i:i + 8], "little"), c)
    _word(v, _last_word(msg), c)
    out = _out(v, 0xee if wide else 0xff, d).to_bytes(8, "little")
    if not wide:
        return out
    v[1] ^= 0xdd
    return out + _out(v, 0, d).to_bytes(8, "little")


def body_hash(key: bytes, body: bytes) -> bytes:
    """The C side's hash of a body (lib/aggregate.c, body_hash), its oracle:
    two SipHash-1-3 lanes (keys k1 ^ 1, ^ 2) take the words in turn, the
    first the last word too; then SipHash-1-3-128 of their outputs and the
    length."""
    k0, k1 = int.from_bytes(key[:8], "little"), int.from_bytes(key[8:], "little")
    lanes = [_sip(k0, k1 ^ (j + 1), False) for j in range(2)]
    words = len(body) // 8
    for i in range(words):
        _word(lanes[i % 2], int.from_bytes(body[8 * i:8 * i + 8], "little"), 1)
    _word(lanes[0], _last_word(body), 1)
    digests = b"".join(_out(v, 0xff, 3).to_bytes(8, "little") for v in lanes)
    return siphash(key, digests + len(body).to_bytes(8, "little"))


def test_the_siphash_oracle_gives_the_published_vectors():
    """2-4: the paper's (key 0..15); 1-3: the reference code's (key 0), as
    in Python's and OCaml's string hashes."""
    key = bytes(range(16))
    assert siphash(key, b"", wide=False, c=2, d=4)[::-1].hex() == "726fdb47dd0e0e31"
    assert siphash(key, bytes(range(15)), wide=False, c=2, d=4)[::-1].hex() == "a129ca6149be45e5"
    assert siphash(key, b"", c=2, d=4).hex() == "a3817f04ba25a8e66df67214c7550293"
    assert siphash(bytes(16), b"", wide=False)[::-1].hex() == "d1fba762150c532c"
    assert siphash(bytes(16), b"\0", wide=False)[::-1].hex() == "68a914128e01e473"


def _tiktoken(doc: bytes) -> int:
    from slopfast import tokens
    from slopfast.fallbacks import tokens as fb_tokens
    enc = fb_tokens.encoding("o200k_base", lambda: tokens._ranks("o200k_base").ranks)
    return len(enc.encode_ordinary(doc.decode("utf-8", "replace")))


def _entries(folder: Path) -> tuple[bytes, dict[tuple[int, int], int]]:
    (path,) = folder.glob("counts-o200k_base-*.bin")
    data = path.read_bytes()
    param = data[len(count_cache.MAGIC):-4]
    assert data.startswith(count_cache.MAGIC) and zlib.crc32(param).to_bytes(4, "big") == data[-4:]
    key, rows = param[:16], list(count_cache.ENTRY.iter_unpack(param[16:]))
    assert rows == sorted(rows)
    return key, {(h0, h1): n for h0, h1, n in rows}


def _unit_start(before: int, c: int) -> bool:
    return before == 0x0A and 0x20 < c < 0x7F and c != 0x2F


def _rest(body: bytes) -> bytes | None:
    """What the cache keeps the count of: the body from its first unit start on (None: not kept)."""
    if len(body) < 1024:
        return None
    first = next((i for i in range(1, len(body)) if _unit_start(body[i - 1], body[i])), None)
    return body[first:] if first is not None else None


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    require_native()
    folder = tmp_path / "cache"
    monkeypatch.setenv("SLOPFAST_COUNT_CACHE", str(folder))
    monkeypatch.setattr(count_cache, "_caches", {})
    return folder


def _tree(root: Path, bodies: list[bytes]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for i, body in enumerate(bodies):
        (root / f"f{i:02}.txt").write_bytes(body)


def _run(root: Path, out: Path, monkeypatch, backend: str = "native", **options):
    monkeypatch.setenv("SLOPFAST_BACKEND", backend)
    monkeypatch.setattr(count_cache, "_caches", {})     # a new process: the file is read again
    report = slopfast.aggregate_paths([root], out, count_tokens=True, **options)
    return report, out.read_bytes()


LINES = ["def f(x):\n", "    return x\n", "/* c */\n", "  indented\n", "\n", "word word word\n", "Ünïcödé ✓\n",
         "x = 1\r\n", "}\n", "'''doc'''\n", "\t\ttab\n", "12345678901234567890\n"]


def test_the_cache_keeps_siphash_and_tiktokens_count_of_each_body(cache_dir, tmp_path, monkeypatch):
    """Each kept entry: the body's hash (body_hash) under the file's key (its
    second word xored with the suffix's length: 1 in markdown, 2 in plain),
    and tiktoken's count of the body's rest and that suffix."""
    bodies = [("".join(LINES) * k).encode() for k in (9, 20)] + [b"x" * 2000, b"short\nA\n"]
    _tree(tmp_path / "t", bodies)
    for fmt, suffix in (("markdown", b"\n"), ("plain", b"\n\n")):
        _run(tmp_path / "t", tmp_path / "o", monkeypatch, format=fmt)
        key, entries = _entries(cache_dir)
        k = key[:8] + (int.from_bytes(key[8:], "little") ^ len(suffix)).to_bytes(8, "little")
        for body in bodies:
            rest = _rest(body)
            h = struct.unpack("<QQ", body_hash(k, body))
            if rest is None:
                assert h not in entries
            else:
                assert entries[h] == _tiktoken(rest + suffix), (fmt, body[:20])
    assert len(entries) == 4      # two kept bodies, two formats


def test_the_body_hash_is_its_oracles_for_every_lane_and_tail(cache_dir, tmp_path, monkeypatch):
    """Bodies of 1024 to 1087 bytes: an even and an odd count of words,
    every tail length, each kept under body_hash."""
    text = ("".join(line for line in LINES if line.isascii()) * 12).encode()   # cut anywhere: still UTF-8
    bodies = [text[:n] for n in range(1024, 1088)]
    _tree(tmp_path / "t", bodies)
    _run(tmp_path / "t", tmp_path / "o", monkeypatch)
    key, entries = _entries(cache_dir)
    k = key[:8] + (int.from_bytes(key[8:], "little") ^ 1).to_bytes(8, "little")
    assert set(entries) == {struct.unpack("<QQ", body_hash(k, body)) for body in bodies}


def test_a_kept_count_is_used(cache_dir, tmp_path, monkeypatch):
    """The next run takes the kept count instead of counting: one made wrong shows, in its file only."""
    body = ("".join(LINES) * 10).encode()
    _tree(tmp_path / "t", [body, b"small\n"])
    first, doc = _run(tmp_path / "t", tmp_path / "o", monkeypatch)
    (path,) = cache_dir.glob("counts-*.bin")
    key, entries = _entries(cache_dir)
    (h,) = entries
    param = key + count_cache.ENTRY.pack(*h, entries[h] + 1000)
    path.write_bytes(count_cache.MAGIC + param + zlib.crc32(param).to_bytes(4, "big"))
    again, doc2 = _run(tmp_path / "t", tmp_path / "o", monkeypatch)
    assert doc2 == doc and first.tokens == _tiktoken(doc)
    assert again.tokens == first.tokens + 1000
    assert again.file_tokens == [first.file_tokens[0] + 1000, first.file_tokens[1]]


_bodies = st.lists(
    st.one_of(
        st.lists(st.sampled_from(LINES), min_size=40, max_size=300).map(lambda ls: "".join(ls).encode()),
        st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\0"), min_size=300, max_size=1500).map(
            lambda t: t.replace("a", "\n").encode() + b"\xff\n" + t.encode()),
        st.lists(st.sampled_from(LINES + ["\xff\xfe", "/", " ", "\n"]), max_size=30).map(
            lambda ls: "".join(ls).encode("utf-8", "surrogateescape")),
    ),
    min_size=1, max_size=6)


@given(bodies=_bodies, fmt=st.sampled_from(["markdown", "plain", "xml"]), threads=st.sampled_from(["1", "2"]),
       mode=st.sampled_from(["full", "summary"]))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_counts_with_the_cache_equal_tiktoken(cache_dir, monkeypatch, bodies, fmt, threads, mode):
    """Cold (counted, kept), warm (from the cache) and without a cache: the
    same document and counts on the native path as on the fallback, the
    total tiktoken's count of the whole document."""
    monkeypatch.setenv("SLOPFAST_THREADS", threads)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        monkeypatch.setenv("SLOPFAST_COUNT_CACHE", str(tmp / "cache"))
        _tree(tmp / "t", bodies)
        runs = [_run(tmp / "t", tmp / "o", monkeypatch, format=fmt, mode=mode) for _ in range(2)]
        monkeypatch.setenv("SLOPFAST_COUNT_CACHE", "off")
        runs.append(_run(tmp / "t", tmp / "o", monkeypatch, format=fmt, mode=mode))
        runs.append(_run(tmp / "t", tmp / "o", monkeypatch, "fallback", format=fmt, mode=mode))
    (report, doc), *others = runs
    assert report.tokens == _tiktoken(doc)
    for other, doc2 in others:
        assert doc2 == doc and (other.tokens, other.file_tokens) == (report.tokens, report.file_tokens)


@pytest.mark.parametrize("damage", ["magic", "crc", "cut", "odd length"])
def test_a_damaged_cache_file_is_ignored_and_rewritten(cache_dir, tmp_path, monkeypatch, damage):
    body = ("".join(LINES) * 10).encode()
    _tree(tmp_path / "t", [body])
    first, doc = _run(tmp_path / "t", tmp_path / "o", monkeypatch)
    (path,) = cache_dir.glob("counts-*.bin")
    data = bytearray(path.read_bytes())
    if damage == "magic":
        data[0] ^= 1
    elif damage == "crc":
        data[-10] ^= 1
    elif damage == "cut":
        del data[-1]
    else:
        param = bytes(data[len(count_cache.MAGIC):-4]) + b"\0"
        data = bytearray(count_cache.MAGIC + param + zlib.crc32(param).to_bytes(4, "big"))
    path.write_bytes(bytes(data))
    assert count_cache._read(str(path)) is None
    again, _ = _run(tmp_path / "t", tmp_path / "o", monkeypatch)
    assert again.tokens == first.tokens == _tiktoken(doc)
    assert len(_entries(cache_dir)[1]) == 1        # counted again, and kept in a whole file


def test_a_full_cache_starts_over_with_this_runs_bodies(cache_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(count_cache, "MAX_ENTRIES", 3)
    lines = "".join(LINES)
    _tree(tmp_path / "a", [(lines * (10 + k)).encode() for k in range(3)])
    _tree(tmp_path / "b", [(lines * (20 + k)).encode() for k in range(2)])
    _run(tmp_path / "a", tmp_path / "o", monkeypatch)
    assert len(_entries(cache_dir)[1]) == 3
    report, doc = _run(tmp_path / "b", tmp_path / "o", monkeypatch)
    assert len(_entries(cache_dir)[1]) == 2 and report.tokens == _tiktoken(doc)


def test_off_keeps_nothing(tmp_path, monkeypatch):
    require_native()
    monkeypatch.setenv("SLOPFAST_COUNT_CACHE", "off")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    _tree(tmp_path / "t", [("".join(LINES) * 10).encode()])
    report, doc = _run(tmp_path / "t", tmp_path / "o", monkeypatch)
    assert report.tokens == _tiktoken(doc)
    assert not list((tmp_path / "xdg").glob("**/counts-*"))


def test_the_default_place_is_the_cache_directory_by_build(tmp_path, monkeypatch):
    require_native()
    monkeypatch.delenv("SLOPFAST_COUNT_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert count_cache.cache_path("cl100k_base") == str(tmp_path / "xdg" / "slopfast" / f"counts-cl100k_base-{native.build_id()}.bin")


@pytest.mark.parametrize("value", [b"", b"k" * 15, b"k" * 16 + b"e" * 23])
def test_the_op_refuses_a_malformed_cache_parameter(value):
    require_native()
    from slopfast import tokens, wire
    from slopfast.errors import PipelineError
    params = {"ranks": tokens._ranks("o200k_base").blob, "encoding": "o200k_base", "count_cache": value}
    with pytest.raises(PipelineError, match="count_cache"):
        native.run([("aggregate", params)], [wire.Input(b"a.txt", b"text\n")])


# ---- the section cache: summaries counted in documents made to be counted (--budget) ----------------------

SECTION_TAG = 0x73656374696F6E00
FORMAT_CODE = {"markdown": 0, "plain": 3}
SOURCES = {
    "m.py": "".join(f"def f{i}(x):\n    '''Doc {i}.'''\n    return x + {i}\n\n" for i in range(60)),
    "d.md": "".join(f"# Part {i}\n\nText of part {i}, ```ticks``` and more.\n\n```\ncode {i}\n```\n\n" for i in range(40)),
    "n.txt": "".join(f"line {i} of a note\n" for i in range(300)),
    "s.py": "x = 1\n",
}


def section_hash(key: bytes, fmt: str, mode: int, path: bytes, lang: bytes, text: bytes) -> tuple[int, int]:
    """lib/aggregate.c's section_hash: the text under a key made from the path and the language."""
    k0, k1 = struct.unpack("<QQ", key)
    k = struct.pack("<QQ", k0 ^ SECTION_TAG, k1 ^ (FORMAT_CODE[fmt] << 8 | mode))
    return struct.unpack("<QQ", body_hash(body_hash(body_hash(k, path), lang), text))


def _summary_counts(root: Path, monkeypatch, backend: str = "native", only: bool = True, **options):
    """(total, per file) of a summary document made to be counted, as --budget makes them."""
    from slopfast import aggregate, walk
    monkeypatch.setenv("SLOPFAST_BACKEND", backend)
    monkeypatch.setattr(count_cache, "_caches", {})
    events = list(walk.walk([str(root)], walk.WalkOptions(check_files=False)))
    with open(os.devnull, "wb") as sink:
        report = aggregate.stream(events, aggregate._Output(sink.fileno()), count=aggregate.CountSpec(only=only),
                                  **options)
    return report.tokens, report.file_tokens


@pytest.mark.parametrize("fmt", ["markdown", "plain"])
@pytest.mark.parametrize("mode", ["summary", "skeleton"])
def test_the_section_cache_keeps_the_fence_and_tiktokens_count_of_each_summary(cache_dir, tmp_path, monkeypatch,
                                                                             fmt, mode):
    """Each summary's entry: section_hash of its source, and the fence's
    length above tiktoken's count of the fence line (plain: the "---" line),
    the summary (the fallback's) and the suffix; none in xml."""
    from slopfast.fallbacks import aggregate as fb
    from slopfast.fallbacks import summary
    write_tree = tmp_path / "t"
    write_tree.mkdir()
    for name, text in SOURCES.items():
        (write_tree / name).write_text(text)
    languages = {"py": "python3"}
    _summary_counts(write_tree, monkeypatch, mode=mode, format=fmt, languages=languages)
    key, entries = _entries(cache_dir)
    code = {"summary": 2, "skeleton": 3}[mode]
    for name, text in SOURCES.items():
        path = str(write_tree / name).encode()
        lang = fb.language(path, {b"py": b"python3"})
        body = summary.summarise(path, text.encode(), mode == "skeleton")
        fence = fb.fence_length(body) if fmt == "markdown" else 0
        units = b"`" * fence + lang + b"\n" + body + b"\n" if fmt == "markdown" else b"---\n" + body + b"\n\n"
        h = section_hash(key, fmt, code, path, lang, text.encode())
        assert entries.pop(h) == fence << 48 | _tiktoken(units), name
    suffix = b"\n" if fmt == "markdown" else b"\n\n"     # what is left: the summaries' own bodies' entries
    k = key[:8] + (int.from_bytes(key[8:], "little") ^ len(suffix)).to_bytes(8, "little")
    bodies = [summary.summarise(str(write_tree / n).encode(), t.encode(), mode == "skeleton") for n, t in SOURCES.items()]
    assert set(entries) == {struct.unpack("<QQ", body_hash(k, b)) for b in bodies if _rest(b) is not None}


def test_a_kept_section_count_is_used_and_a_changed_file_misses(cache_dir, tmp_path, monkeypatch):
    """A document made to be counted takes a summary's count from its entry:
    one made wrong shows, in its file only; a file whose source changed is
    summarised and counted again."""
    root = tmp_path / "t"
    root.mkdir()
    for name, text in SOURCES.items():
        (root / name).write_text(text)
    first = _summary_counts(root, monkeypatch, mode="summary")
    key, entries = _entries(cache_dir)
    path = str(root / "m.py").encode()
    h = section_hash(key, "markdown", 2, path, b"py", SOURCES["m.py"].encode())
    entries[h] += 1000
    param = key + b"".join(count_cache.ENTRY.pack(*e, n) for e, n in sorted(entries.items()))
    (cache_file,) = cache_dir.glob("counts-*.bin")
    cache_file.write_bytes(count_cache.MAGIC + param + zlib.crc32(param).to_bytes(4, "big"))
    total, per = _summary_counts(root, monkeypatch, mode="summary")
    at = sorted(SOURCES).index("m.py")
    assert total == first[0] + 1000 and per == [n + 1000 * (i == at) for i, n in enumerate(first[1])]
    (root / "m.py").write_text(SOURCES["m.py"] + "def g():\n    pass\n")
    changed = _summary_counts(root, monkeypatch, mode="summary", only=False)
    assert _summary_counts(root, monkeypatch, mode="summary") == changed != first


_sources = st.lists(
    st.tuples(st.sampled_from(["py", "md", "txt"]),
              st.one_of(_bodies.map(b"".join),
                        st.lists(st.sampled_from(list(SOURCES.values()) + LINES), max_size=8).map(
                            lambda ts: "".join(ts).encode()))),
    min_size=1, max_size=6)


@given(files=_sources, fmt=st.sampled_from(["markdown", "plain", "xml"]), mode=st.sampled_from(["summary", "skeleton"]),
       threads=st.sampled_from(["1", "2"]))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_summaries_from_the_section_cache_count_as_summaries_made(cache_dir, monkeypatch, files, fmt, mode, threads):
    """Cold (made, kept), warm (from the section cache) and counted as a
    document to keep (no section cache), natively and on the fallback: the
    same counts, per file and in all."""
    monkeypatch.setenv("SLOPFAST_THREADS", threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "t"
        root.mkdir()
        for i, (suffix, body) in enumerate(files):
            (root / f"f{i}.{suffix}").write_bytes(body)
        monkeypatch.setenv("SLOPFAST_COUNT_CACHE", str(Path(tmp) / "cache"))
        runs = [_summary_counts(root, monkeypatch, mode=mode, format=fmt) for _ in range(2)]
        runs.append(_summary_counts(root, monkeypatch, mode=mode, format=fmt, only=False))
        monkeypatch.setenv("SLOPFAST_COUNT_CACHE", "off")
        runs.append(_summary_counts(root, monkeypatch, mode=mode, format=fmt))
        runs.append(_summary_counts(root, monkeypatch, "fallback", mode=mode, format=fmt))
    assert all(run == runs[0] for run in runs), runs


def test_a_summary_whose_fence_does_not_fit_an_entry_is_counted_each_time(cache_dir, tmp_path, monkeypatch):
    """The entry keeps the fence's length in 16 bits: a summary with a longer
    backtick run is not kept, and counts as made."""
    root = tmp_path / "t"
    root.mkdir()
    (root / "long.txt").write_text("`" * 70_000 + "\nnext\n")
    (root / "n.txt").write_text(SOURCES["n.txt"])
    made = _summary_counts(root, monkeypatch, mode="summary", only=False)
    assert _summary_counts(root, monkeypatch, mode="summary") == made
    key, entries = _entries(cache_dir)
    sections = {section_hash(key, "markdown", 2, str(root / n).encode(), b"txt", (root / n).read_bytes())
                for n in ("long.txt", "n.txt")}
    assert len(sections & set(entries)) == 1
    assert _summary_counts(root, monkeypatch, mode="summary") == made


# ---- ahead and known: --budget's summaries looked up while the full document is counted ----------------------

def _stream(events, monkeypatch, count, backend: str = "native", **options):
    from slopfast import aggregate
    monkeypatch.setenv("SLOPFAST_BACKEND", backend)
    monkeypatch.setattr(count_cache, "_caches", {})
    with open(os.devnull, "wb") as sink:
        report = aggregate.stream(events, aggregate._Output(sink.fileno()), count=count, **options)
    return report.tokens, report.file_tokens, report.files


def _source_tree(root: Path):
    from slopfast import walk
    root.mkdir()
    for name, text in SOURCES.items():
        (root / name).write_text(text)
    return list(walk.walk([str(root)], walk.WalkOptions(check_files=False)))


@pytest.mark.parametrize("fmt", ["markdown", "plain"])
def test_a_full_document_finds_its_summaries_entries_ahead(cache_dir, tmp_path, monkeypatch, fmt):
    """With ahead, a full document is made and counted as without, and
    `known` gets each summary's entry the cache has: none on a cold cache,
    the section cache's entries on a warm one."""
    from slopfast.aggregate import CountSpec
    events = _source_tree(tmp_path / "t")
    plain = _stream(events, monkeypatch, CountSpec(), format=fmt)
    cold = CountSpec(ahead="summary", known={})
    assert _stream(events, monkeypatch, cold, format=fmt) == plain and cold.known == {}
    _summary_counts(tmp_path / "t", monkeypatch, mode="summary", format=fmt)
    key, entries = _entries(cache_dir)
    warm = CountSpec(ahead="summary", known={})
    assert _stream(events, monkeypatch, warm, format=fmt) == plain
    expected = {}
    for name, text in SOURCES.items():
        path = str(tmp_path / "t" / name).encode()
        expected[path] = entries[section_hash(key, fmt, 2, path, path.rsplit(b".", 1)[1], text.encode())]
    assert warm.known == expected
    skeletons = CountSpec(ahead="skeleton", known={})     # another mode's entries are not these
    _stream(events, monkeypatch, skeletons, format=fmt)
    assert skeletons.known == {}


def test_a_counted_document_takes_known_summaries_without_reading_the_files(cache_dir, tmp_path, monkeypatch):
    """A count-only summary document takes each known entry for its file and
    reads none of them: files changed since count as they were; an entry
    made wrong shows in its file only; unknown files are read as ever."""
    from slopfast.aggregate import CountSpec
    root = tmp_path / "t"
    events = _source_tree(root)
    before = _summary_counts(root, monkeypatch, mode="summary")
    ahead = CountSpec(ahead="summary", known={})
    _stream(events, monkeypatch, ahead)
    assert len(ahead.known) == len(SOURCES)
    for name in SOURCES:
        (root / name).write_text("changed\n" * 500)
    given = CountSpec(only=True, known=ahead.known)
    tokens, per, files = _stream(events, monkeypatch, given, mode="summary")
    assert (tokens, per) == before and [size for _, size in files] == [0] * len(SOURCES)
    wrong = dict(ahead.known)
    wrong[str(root / "m.py").encode()] += 1000
    at = sorted(SOURCES).index("m.py")
    tokens, per, _ = _stream(events, monkeypatch, CountSpec(only=True, known=wrong), mode="summary")
    assert tokens == before[0] + 1000 and per == [n + 1000 * (i == at) for i, n in enumerate(before[1])]
    del wrong[str(root / "m.py").encode()]
    read = _stream(events, monkeypatch, CountSpec(only=True, known=wrong), mode="summary")
    assert read[1][at] != before[1][at] and read[2][at][1] == len("changed\n" * 500)


@pytest.mark.parametrize("params, message", [({"ahead": "full"}, "ahead"), ({"ahead": "x"}, "ahead"),
                                             ({"known": b"\0" * 7}, "known"), ({"known": b"\0" * 16}, "known")])
def test_the_op_refuses_a_bad_ahead_or_known(params, message):
    require_native()
    from slopfast import tokens, wire
    from slopfast.errors import PipelineError
    params = {"ranks": tokens._ranks("o200k_base").blob, "encoding": "o200k_base", "count_cache": b"k" * 16,
              "count_only": "1", **params}
    with pytest.raises(PipelineError, match=message):
        native.run([("aggregate", params)], [wire.Input(b"a.txt", b"text\n")])


@given(files=_sources, fmt=st.sampled_from(["markdown", "plain", "xml"]), share=st.sampled_from([0.2, 0.5, 0.9]))
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_budget_document_is_the_same_cold_warm_uncached_and_on_the_fallback(cache_dir, monkeypatch, files, fmt,
                                                                            share):
    """--budget's document and its choice of files, with the section cache
    cold and warm (summaries found ahead, not read), without it, and on the
    fallback."""
    from slopfast.errors import SlopfastError
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "t"
        root.mkdir()
        for i, (suffix, body) in enumerate(files):
            (root / f"f{i}.{suffix}").write_bytes(body)
        whole = _run(root, Path(tmp) / "whole.md", monkeypatch, format=fmt)[0].tokens
        budget = max(1, int(whole * share))
        monkeypatch.setenv("SLOPFAST_COUNT_CACHE", str(Path(tmp) / "cache"))
        runs = []
        for backend, cache in [("native", None), ("native", None), ("native", "off"), ("fallback", "off")]:
            if cache:
                monkeypatch.setenv("SLOPFAST_COUNT_CACHE", cache)
            out = Path(tmp) / f"out{len(runs)}.md"
            try:
                report, doc = _run(root, out, monkeypatch, backend, format=fmt, budget=budget)
                runs.append((doc, report.stepped_down, report.tokens))
            except SlopfastError as exc:       # not even the tree fits: the same error everywhere
                runs.append(str(exc).replace(str(out), "OUT"))
    assert all(run == runs[0] for run in runs), runs
