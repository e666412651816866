"""The limits of lib/op.h, each at the limit and one past it, with a clear
error (code 5, "limit exceeded", naming the limit); and allocation failure
in every op with real inputs gives an out-of-memory response, never a wrong
answer or a crash.

The byte limits are huge (GiB), so they are tested on test builds that
lower them with -DSLOPFAST_LIMIT_*_BYTES (tests/native_builds.py); the
count limits on the shipped library itself."""
from __future__ import annotations

import json
import os
import re
import struct
from pathlib import Path

import pytest

import native_builds
from slopfast import native, ops, wire
from slopfast.wire import Input

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
OP_H = (ROOT / "lib" / "op.h").read_text()


def limit(name: str) -> int:
    m = re.search(rf"\b{name}\s*=\s*([^,]+),", OP_H)
    assert m, name
    return int(eval(m.group(1).split("/*")[0].replace("u", "")))   # "1u << 20", "(1u << 16) - 1"


def call(lib, request: bytes, **opts) -> wire.Response:
    return native.run_blob_opts(request, lib=lib, **opts)


def echo(n_ops: int = 1, n_params: int = 0, inputs=()) -> bytes:
    params = {f"k{i}": "v" for i in range(n_params)}
    return wire.encode_request([("echo", params)] * n_ops, list(inputs))


# ---- count limits, on the shipped library --------------------------------------

def test_the_limits_are_named_in_op_h():
    for name in ("LIMIT_OPS", "LIMIT_PARAMS", "LIMIT_INPUTS", "LIMIT_NAME_BYTES",
                 "LIMIT_REQUEST_BYTES", "LIMIT_INPUT_BYTES", "LIMIT_OUTPUT_BYTES"):
        assert re.search(rf"\b{name}\b", OP_H), name


@pytest.mark.parametrize("encode", [wire.encode_request, wire.encode_request_text], ids=["v3", "v1"])
def test_op_count(lib, encode):
    n = limit("LIMIT_OPS")
    ok = call(lib, encode([("echo", {})] * n, [Input(b"a", b"x")]))
    assert ok.code == 0 and len(ok.parts) == n
    over = call(lib, encode([("echo", {})] * (n + 1), [Input(b"a", b"x")]))
    assert over.code == 5
    assert over.message in (f"{n + 1} ops; the limit is {n}", f"line {n + 2}: more than {n} ops")


@pytest.mark.parametrize("encode", [wire.encode_request, wire.encode_request_text], ids=["v3", "v1"])
def test_param_count(lib, encode):
    n = limit("LIMIT_PARAMS")
    params = {f"k{i}": "v" for i in range(n)}
    assert call(lib, encode([("echo", params)], [])).code == 0
    params[f"k{n}"] = "v"
    over = call(lib, encode([("echo", params)], []))
    assert over.code == 5
    assert over.message in (f"op has {n + 1} parameters; the limit is {n}", f"line 2: more than {n} parameters")


def test_input_count(lib):
    """LIMIT_INPUTS file inputs and no ops: decoded, never read (6 bytes each on the wire)."""
    n = limit("LIMIT_INPUTS")
    head = wire.encode_request([], [])[:-4]
    one = struct.pack("<BBI", wire.KIND_FILE, 0, 0)
    assert call(lib, head + struct.pack("<I", n) + one * n).code == 0
    over = call(lib, head + struct.pack("<I", n + 1) + one * (n + 1))
    assert (over.code, over.message) == (5, f"{n + 1} inputs; the limit is {n}")


def test_name_bytes(lib):
    n = limit("LIMIT_NAME_BYTES")
    assert call(lib, echo(inputs=[Input(b"p" * n, b"x")])).code == 0
    over = call(lib, echo(inputs=[Input(b"p" * (n + 1), b"x")]))
    assert (over.code, over.message) == (5, f"input path of {n + 1} bytes; the limit is {n}")
    text = wire.encode_request_text([("echo", {})], [Input(b"p" * (n + 1), b"x")])
    over = call(lib, text)
    assert over.code == 5 and f"path longer than {n} bytes" in over.message


def test_markdown_and_python_nesting_are_bounded(lib):
    """md_outline stops descending at markdown-it's maxNesting; py_skeleton refuses
    what CPython refuses (too many nested parentheses): both answer, neither recurses unbounded."""
    deep_md = b"> " * 5000 + b"# deep\n" + b"- " * 5000 + b"# list\n"
    for op in ("md_outline", "md_summary"):
        assert call(lib, wire.encode_request([(op, {})], [Input(b"d.md", deep_md)])).code == 0
    ok = call(lib, wire.encode_request([("py_skeleton", {})], [Input(b"x.py", b"x = " + b"(" * 50 + b")" * 50 + b"\n")]))
    assert ok.code == 0
    over = call(lib, wire.encode_request([("py_skeleton", {})], [Input(b"x.py", b"x = " + b"(" * 5000 + b")" * 5000 + b"\n")]))
    assert over.code == 7 and "too many nested parentheses" in over.message


# ---- byte limits, on builds that lower them --------------------------------------

REQUEST_LIMIT, INPUT_LIMIT, OUTPUT_LIMIT = 4096, 1000, 8192


def sized_echo(total: int) -> bytes:
    """A valid v3 echo request of exactly `total` bytes."""
    base = len(echo(inputs=[Input(b"a", b"")]))
    return echo(inputs=[Input(b"a", b"x" * (total - base))])


def test_request_bytes():
    lib = native_builds.library(f"-DSLOPFAST_LIMIT_REQUEST_BYTES={REQUEST_LIMIT}")
    assert call(lib, sized_echo(REQUEST_LIMIT)).code == 0
    over = call(lib, sized_echo(REQUEST_LIMIT + 1))
    assert (over.code, over.message) == (5, f"request of {REQUEST_LIMIT + 1} bytes; the limit is {REQUEST_LIMIT}")


def test_request_bytes_of_the_shipped_library(lib):
    """4 GiB: checked against the length before any byte is read."""
    resp = lib.run(b"SLPF\x03", (1 << 32) + 1)   # a length past the 5 bytes given: never read
    try:
        assert resp.contents.code == 5
    finally:
        lib.free(resp)


def test_input_bytes(tmp_path, monkeypatch):
    """A file the C side reads: LIMIT_INPUT_BYTES, then EFBIG as an input error."""
    lib = native_builds.library(f"-DSLOPFAST_LIMIT_INPUT_BYTES={INPUT_LIMIT}")
    (tmp_path / "at").write_bytes(b"x" * INPUT_LIMIT)
    (tmp_path / "over").write_bytes(b"x" * (INPUT_LIMIT + 1))
    monkeypatch.chdir(tmp_path)
    for op in ("echo", "md_outline", "py_skeleton"):
        ok = call(lib, wire.encode_request([(op, {})], [Input(b"at")]))
        assert ok.code in (0, 7), (op, ok)   # read (py_skeleton may reject "xxx…" as Python: that is its answer)
        over = call(lib, wire.encode_request([(op, {})], [Input(b"over")]))
        assert over.code == 4 and "errno 27" in over.message, (op, over)   # EFBIG
    doc = call(lib, wire.encode_request([("aggregate", {})], [Input(b"at"), Input(b"over")]))
    assert doc.code == 0 and wire.decode_records(doc.parts[1]) == [(1, 27)]   # listed as unreadable


@pytest.mark.parametrize("op", ["echo", "aggregate", "md_summary"])
def test_output_bytes(op):
    """The response parts (with their 8-byte length fields) up to LIMIT_OUTPUT_BYTES."""
    lib = native_builds.library(f"-DSLOPFAST_LIMIT_OUTPUT_BYTES={OUTPUT_LIMIT}")
    if op == "echo":
        make = lambda n: [Input(b"a", b"x" * n)]                        # 8 + n bytes
    elif op == "aggregate":
        make = lambda n: [Input(b"a", b"x" * n)]                        # heading, fences, body; part 1 empty
    else:
        make = lambda n: [Input(b"a.md", b"# " + b"h" * n + b"\n")]    # "- " + text + "\n"
    sizes = [n for n in range(OUTPUT_LIMIT - 200, OUTPUT_LIMIT + 1)]
    answers = {n: call(lib, wire.encode_request([(op, {})], make(n))) for n in sizes}
    fits = [n for n, r in answers.items() if r.code == 0]
    assert fits, op
    largest = max(fits)
    out = sum(8 + len(p) for p in answers[largest].parts)
    assert out == OUTPUT_LIMIT, (op, out)                               # the limit itself fits
    over = answers[largest + 1]
    assert (over.code, over.message) == (5, f"{op}: output larger than the limit of {OUTPUT_LIMIT} bytes")


# ---- allocation failure in every op, with real inputs ----------------------------

def _op_requests() -> dict[str, bytes]:
    md = (DATA / "rust-book" / "src" / "ch01-01-installation.md").read_bytes()[:3000]
    spec = json.loads((DATA / "commonmark" / "commonmark-spec-0.31.2.json").read_text())
    examples = b"".join(ex["markdown"].encode() for ex in spec[:40])
    py = (ROOT / "slopfast" / "errors.py").read_bytes()
    return {
        "echo": wire.encode_request([("echo", {})], [Input(b"a.md", md), Input(b"b.py", py)]),
        "aggregate": wire.encode_request([("aggregate", {"mode": "summary", "lang": "py\tpython"})],
                                              [Input(b"a.md", md), Input(b"b.py", py, wire.MODE_SKELETON),
                                               Input(b"c.txt", b"line\n" * 50), Input(b"missing/file")]),
        "md_outline": wire.encode_request([("md_outline", {})], [Input(b"a.md", md), Input(b"spec.md", examples)]),
        "md_summary": wire.encode_request_text([("md_summary", {})], [Input(b"a.md", md)]),
        "py_skeleton": wire.encode_request([("py_skeleton", {"full": "PipelineError"})], [Input(b"b.py", py)]),
        "walk": _walk_request(),
        # a small vocabulary (the real one is 1.6 MB: thousands of arena blocks to fail one by one)
        "tokens": wire.encode_request([("tokens", {"encoding": "cl100k_base", "ranks": _small_ranks()})],
                                      [Input(b"a.md", md), Input(b"b.py", py), Input(b"c.txt", b"x\xff" + b"abc" * 200)]),
    }


def _walk_request() -> bytes:
    """The walk op over tests/data/wire, with rules of every kind, and the index of this checkout."""
    from slopfast.ignore import RuleList, parse_rule, repo_at
    from slopfast.walk_native import _layer

    def rules(*patterns: bytes, base: bytes = b"", source: str = "x") -> RuleList:
        return RuleList([parse_rule(p) for p in patterns], base, source)

    layers = (_layer(0, rules(b"*.bin", b"!aggregate*", b"[[:alpha:]]*_v1.txt", b"**/files/", b"a/**/b", b"[z-a]"))
              + _layer(1, rules(b"*.response.txt", b"!*json*", b"files/?ello*"))
              + _layer(2, rules(b"bad*", b"!bad_escape*")) + _layer(3, rules(b"*.txt", b"files/")))
    params = {"git": "1", "hidden": "1", "prefix": b"w/", "offset": b"tests/data/wire/", "layers": layers,
              "hash_len": "20"}
    repo = repo_at(str(ROOT))
    if repo is not None:
        params["index"] = os.path.join(repo.git_dir, "index")
    return wire.encode_request([("walk", params)], [Input(str(DATA / "wire").encode())])


def _small_ranks() -> bytes:
    """Every byte, then the most common pairs and triples of a sample: a
    vocabulary under which the merges do real work."""
    from collections import Counter
    sample = (ROOT / "slopfast" / "errors.py").read_bytes()
    grams = Counter(sample[i:i + n] for n in (2, 3, 4) for i in range(len(sample) - n))
    tokens = [bytes([b]) for b in range(256)] + [g for g, _ in grams.most_common(600)]
    return b"".join(bytes((len(t),)) + t for t in tokens)


OPS = [op.name for op in ops.NATIVE]


def test_every_op_is_covered():
    assert sorted(_op_requests()) == sorted(OPS)


@pytest.mark.parametrize("op", OPS)
def test_every_allocation_failure_in_every_op(op):
    hooks = native_builds.library("-DSLOPFAST_TEST_HOOKS")
    request = _op_requests()[op]
    expected = call(hooks, request)
    assert expected.code == 0 and expected.parts, expected
    for fail_after in range(1, 20000):
        got = call(hooks, request, fail_after=fail_after)
        if got == expected:
            break
        assert got.code == 6 and "out of memory" in got.message, (fail_after, got.code, got.message)
        # the error record, or none when not even the response could be encoded
        assert got.parts in ([], [wire.encode_records("sis", [(b"", -1, b"out of memory")])]) or \
            wire.decode_records(got.parts[0])[0][1:] == (-1, b"out of memory")
    else:
        pytest.fail("more than 20000 arena blocks")


@pytest.mark.parametrize("op", OPS)
def test_memory_caps_in_every_op(lib, op):
    request = _op_requests()[op]
    expected = call(lib, request)
    for cap in (1, 4096, 64 << 10, 65 << 10, 100 << 10, 200 << 10, 1 << 20, 8 << 20):
        got = call(lib, request, memory_limit=cap)
        assert got == expected or (got.code == 6 and "out of memory" in got.message), (cap, got.code, got.message)
