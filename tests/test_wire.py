"""The wire format (docs/wire-format.md): golden vectors through ctypes and through
the standalone binary, v1 == v3, encoders byte for byte, fuzzing, forged counts
and lengths under a memory cap, PipelineError, both transports, threads."""
from __future__ import annotations

import ctypes
import os
import threading
import random
import re
import shutil
import struct
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import native_builds
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slopfast import native, wire
from slopfast.errors import PipelineError

from conftest import subprocess_env
from wire_vectors import GEN, VECTORS, WIRE, request_path, response_path

ROOT = Path(__file__).resolve().parent.parent
CASES = [(v, form) for v in VECTORS for form in v.forms()]
CASE_IDS = [f"{v.name}-{form}" for v, form in CASES]
FILES = ["files/hello.txt", "files/lines.txt", "files/crlf.txt", "files/notes.md", "files/odd name%.txt"]
FUZZ_SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


# ---- fixtures and helpers ---------------------------------------------------

@pytest.fixture(scope="module")
def exe():
    """The standalone pipeline binary."""
    path = native.binary_path()
    if not path.exists():
        pytest.skip(f"pipeline binary not found at {path}")
    return path


@pytest.fixture
def in_wire(monkeypatch):
    """File inputs of the vectors are relative to tests/data/wire."""
    monkeypatch.chdir(WIRE)
    monkeypatch.delenv("SLOPFAST_TRANSPORT", raising=False)


def raw(lib, request: bytes | None, length: int | None = None, memory_limit: int = 0, fail_after: int = 0):
    """(code, message, response bytes) straight from pipeline_run(_opts)."""
    n = len(request) if length is None else length
    if memory_limit or fail_after:
        resp = lib.run_opts(request, n, lib.Opts(memory_limit, fail_after))
    else:
        resp = lib.run(request, n)
    try:
        r = resp.contents
        return (r.code, ctypes.string_at(r.message, r.message_len) if r.message_len else b"",
                ctypes.string_at(r.data, r.len) if r.len else b"")
    finally:
        lib.free(resp)


def run_exe(exe: Path, request: bytes, cwd: Path = WIRE) -> subprocess.CompletedProcess:
    return subprocess.run([str(exe)], input=request, capture_output=True, cwd=cwd, timeout=60)


def file_bytes(path: bytes) -> bytes:
    return (WIRE / path.decode()).read_bytes()


def expected_parts(ops, inputs) -> list[bytes]:
    """What echo ops answer: one part per input, per op."""
    data = [i.data if i.data is not None else file_bytes(i.path) for i in inputs]
    return data * len(ops)


def check_response(code: int, message: bytes, data: bytes) -> wire.Response:
    """Any answer of the library must be a well-formed response that agrees with its fields."""
    assert 0 <= code <= 7, code
    decoded = wire.decode_response(data)
    assert decoded.code == code
    if code:
        assert message and decoded.message == message.decode("utf-8", "replace")
        (op, index, detail), = parse_records(decoded.parts[0])     # the error record
        assert message.endswith(detail)
        assert message.startswith(op + b": ") if op else message == detail
        assert index >= -1
    else:
        assert message == b""
    return decoded


# ---- the vectors themselves (no native code needed) -------------------------

@pytest.mark.parametrize("vector, form", CASES, ids=CASE_IDS)
def test_request_files_match_their_models(vector, form):
    """encode_request / encode_request_text reproduce the checked-in requests byte for byte."""
    assert request_path(vector.name, form).read_bytes() == vector.request(form)
    how = vector.v1 if form == "v1" else vector.v3
    if how is GEN:
        encode = wire.encode_request_text if form == "v1" else wire.encode_request
        assert request_path(vector.name, form).read_bytes() == encode(vector.ops, vector.inputs, vector.response_format)


def test_every_vector_file_is_known():
    known = {request_path(v.name, f).name for v, f in CASES}
    known |= {response_path(v.name, f).name for v, f in CASES}
    on_disk = {p.name for p in WIRE.iterdir() if p.is_file() and p.name != ".gitattributes"}
    assert on_disk == known


@pytest.mark.parametrize("vector, form", CASES, ids=CASE_IDS)
def test_golden_responses_decode_to_the_intended_result(vector, form):
    r = wire.decode_response(response_path(vector.name, form).read_bytes())
    assert r.code == vector.code
    assert (r.message == "") == (r.code == 0)
    if r.code == 0 and all(name == "echo" for name, _ in vector.ops):
        assert r.parts == expected_parts(vector.ops, vector.inputs)


def parse_records(part: bytes) -> list[tuple]:
    """A record-part parser written from docs/wire-format.md alone (strings as bytes)."""
    widths = {"B": (1, False), "I": (4, False), "i": (4, True), "Q": (8, False), "q": (8, True)}
    columns = part[0]
    schema = part[1 : 1 + columns].decode("ascii")
    at = 1 + columns
    count = int.from_bytes(part[at : at + 4], "little")
    at += 4
    rows = []
    for _ in range(count):
        row = []
        for letter in schema:
            if letter in "st":
                n = int.from_bytes(part[at : at + 4], "little")
                assert at + 4 + n <= len(part)
                row.append(part[at + 4 : at + 4 + n])
                at += 4 + n
            else:
                width, signed = widths[letter]
                assert at + width <= len(part)
                row.append(int.from_bytes(part[at : at + width], "little", signed=signed))
                at += width
        rows.append(tuple(row))
    assert at == len(part), "trailing bytes"
    return rows


def test_golden_op_parts_follow_the_documented_layouts():
    """md_outline records (BIt: level, line, text), md_summary lines and
    aggregate's unreadable inputs (Ii) (docs/wire-format.md, "Ops")."""
    outline = wire.decode_response(response_path("md_outline", "v3").read_bytes()).parts
    assert [wire.decode_records(p) for p in outline] == [
        [(level, line, text.decode()) for level, line, text in parse_records(p)] for p in outline]
    assert [parse_records(p) for p in outline] == [
        [(1, 0, b"Notes"), (2, 4, b"Part two")], [(1, 0, b"Title"), (3, 3, b"Deep `x`")], []]
    summary = wire.decode_response(response_path("md_summary", "v3").read_bytes()).parts
    assert summary == [b"- Notes\n  - Part two\n", b"- Title\n    - Deep `x`\n"]
    unreadable = wire.decode_response(response_path("build_markdown_missing_file", "v3").read_bytes()).parts[1]
    assert parse_records(unreadable) == wire.decode_records(unreadable) == [(1, 2)]   # input 1, ENOENT


def parse_v3(blob: bytes):
    """A v3 request parser written from docs/wire-format.md alone."""
    at = 0

    def take(n: int) -> bytes:
        nonlocal at
        assert at + n <= len(blob), "truncated"
        at += n
        return blob[at - n : at]

    def u(n: int) -> int:
        return int.from_bytes(take(n), "little")

    assert take(4) == b"SLPF" and u(1) == 3
    response_format = u(1)
    assert u(2) == 0
    ops = []
    for _ in range(u(4)):
        name = take(u(2)).decode()
        params = {}
        for _ in range(u(2)):
            key = take(u(2)).decode()
            params[key] = take(u(4))
        ops.append((name, params))
    inputs = []
    for _ in range(u(4)):
        kind, mode, path = u(1), u(1), take(u(4))
        assert kind in (0, 1)
        inputs.append(wire.Input(path, take(u(8)) if kind == 0 else None, mode))
    assert at == len(blob), "trailing bytes"
    return response_format, ops, inputs


@pytest.mark.parametrize("vector", [v for v in VECTORS if v.v3 is GEN], ids=lambda v: v.name)
def test_v3_layout_matches_the_spec(vector):
    fmt, ops, inputs = parse_v3(request_path(vector.name, "v3").read_bytes())
    assert fmt == vector.response_format
    assert ops == [(n, {k: wire._b(v) for k, v in p.items()}) for n, p in vector.ops]
    assert inputs == list(vector.inputs)


def test_v1_cannot_carry_empty_tokens():
    with pytest.raises(ValueError):
        wire.encode_request_text([("", {})], [])
    with pytest.raises(ValueError):
        wire.encode_request_text([], [wire.Input(b"", b"x")])
    assert wire.encode_request([("echo", {})], [wire.Input(b"", b"x")])   # v3 can


# ---- golden vectors through the library and the binary ----------------------

@pytest.mark.parametrize("vector, form", CASES, ids=CASE_IDS)
def test_golden_in_process(lib, in_wire, vector, form):
    code, message, data = raw(lib, request_path(vector.name, form).read_bytes())
    assert data == response_path(vector.name, form).read_bytes()
    assert code == vector.code
    check_response(code, message, data)


@pytest.mark.parametrize("vector, form", CASES, ids=CASE_IDS)
def test_golden_standalone_binary(exe, vector, form):
    with open(request_path(vector.name, form), "rb") as request:
        proc = subprocess.run([str(exe)], stdin=request, capture_output=True, cwd=WIRE, timeout=60)
    assert proc.stdout == response_path(vector.name, form).read_bytes()
    assert proc.returncode == (0 if vector.code == 0 else 1), proc.stderr
    assert proc.stderr == b""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX shell redirect")
def test_binary_reads_a_text_envelope_from_a_shell_redirect(exe):
    proc = subprocess.run(["/bin/sh", "-c", '"$0" < echo_file.v1.txt', str(exe)], capture_output=True, cwd=WIRE)
    assert proc.returncode == 0
    assert proc.stdout == (WIRE / "echo_file.response.txt").read_bytes()


@pytest.mark.parametrize("vector", [v for v in VECTORS if len(v.forms()) == 2], ids=lambda v: v.name)
def test_v1_and_v3_are_equivalent(lib, in_wire, vector):
    v1 = raw(lib, request_path(vector.name, "v1").read_bytes())
    v3 = raw(lib, request_path(vector.name, "v3").read_bytes())
    assert v1[0] == v3[0] == vector.code
    if vector.code == 0:
        assert v1 == v3                     # the same request: the same bytes back
    else:
        assert v1[1] and v3[1]              # the messages may name a line or an offset


@pytest.mark.parametrize("vector, form", CASES, ids=CASE_IDS)
def test_subprocess_transport_gives_identical_results(lib, exe, in_wire, monkeypatch, vector, form):
    request = request_path(vector.name, form).read_bytes()
    in_process = native.run_blob(request)
    monkeypatch.setenv("SLOPFAST_TRANSPORT", "subprocess")
    assert native.run_blob(request) == in_process
    assert in_process.code == vector.code


@pytest.mark.parametrize("version", [v for v in range(256) if v != wire.WIRE_VERSION])
def test_an_unknown_binary_version_is_a_clear_error(lib, version):
    request = bytearray(wire.encode_request([("echo", {})], [wire.Input(b"a", b"b")]))
    request[4] = version
    code, message, _ = raw(lib, bytes(request))
    assert code == 1
    assert message == b"unsupported binary wire version %d (this library speaks %d)" % (version, wire.WIRE_VERSION)


def test_an_unknown_text_version_is_a_clear_error(lib):
    for version in (b"0", b"2", b"10", b"", b"1 ", b"v1"):
        code, message, _ = raw(lib, b"slopfast-request " + version + b"\nend\n")
        assert (code, message) == (1, b"unsupported text wire version (this library speaks 1)")


def test_request_length_limit_and_null_pointer(lib):
    code, message, _ = raw(lib, b"SLPF\x03", length=(1 << 32) + 1)   # checked before any byte is read
    assert code == 5 and message == b"request of 4294967297 bytes; the limit is 4294967296"
    code, message, _ = raw(lib, None, length=10)
    assert (code, message) == (1, b"null request pointer")
    code, _, data = raw(lib, None, length=0)
    assert code == 1 and wire.decode_response(data).message == "bad magic: not a slopfast request"


# ---- PipelineError ------------------------------------------------------------

@pytest.mark.parametrize("transport", ["inprocess", "subprocess"])
def test_pipeline_error_carries_the_c_message(lib, exe, in_wire, monkeypatch, transport):
    monkeypatch.setenv("SLOPFAST_TRANSPORT", transport)
    with pytest.raises(PipelineError) as err:
        native.run([("nope", {})], [])
    assert err.value.code == 2
    assert "unknown op 'nope'" in str(err.value)
    with pytest.raises(PipelineError) as err:
        native.run([("echo", {})], [wire.Input(b"files/missing.txt")])
    assert err.value.code == 4
    assert str(err.value) == "echo: files/missing.txt: cannot read (errno 2) (input error)"
    assert (err.value.op, err.value.input, err.value.detail) == ("echo", 0, "cannot read (errno 2)")
    with pytest.raises(PipelineError) as err:
        native.run([("aggregate", {"mode": "loud"})], [])
    assert err.value.code == 3
    assert "parameter mode: expected full, summary or skeleton" in str(err.value)
    assert native.run([("echo", {})], [wire.Input(b"files/hello.txt")]) == [b"hello, wire\n"]


# ---- random valid requests round-trip ----------------------------------------

tokens = st.binary(min_size=1, max_size=24)
values = st.one_of(st.text(max_size=16), st.binary(max_size=16))
echo_ops = st.builds(lambda params: ("echo", params), st.dictionaries(st.text(max_size=8), values, max_size=4))
inline_inputs = st.builds(wire.Input, tokens, st.binary(max_size=300), st.integers(0, 3))
file_inputs = st.builds(lambda p, m: wire.Input(p.encode(), None, m), st.sampled_from(FILES), st.integers(0, 3))
requests = st.tuples(
    st.lists(echo_ops, min_size=1, max_size=3),
    st.lists(st.one_of(inline_inputs, file_inputs), max_size=8),
    st.sampled_from([wire.RESPONSE_BINARY, wire.RESPONSE_TEXT]),
)


@settings(max_examples=300, **FUZZ_SETTINGS)
@given(requests)
def test_random_valid_requests_round_trip(lib, in_wire, request):
    ops, inputs, fmt = request
    v3 = raw(lib, wire.encode_request(ops, inputs, fmt))
    v1 = raw(lib, wire.encode_request_text(ops, inputs, fmt))
    assert v1 == v3
    assert check_response(*v3).parts == expected_parts(ops, inputs)
    assert native.run(ops, inputs) == expected_parts(ops, inputs)


# ---- mutations and truncations never crash -------------------------------------

def mutate(blob: bytes, edits) -> bytes:
    b = bytearray(blob)
    for pos, kind, value in edits:
        at = pos % (len(b) + 1)
        if kind == "truncate":
            del b[at:]
        elif kind == "insert":
            b[at:at] = bytes((value,))
        elif kind == "delete":
            del b[at : at + 1 + value % 8]
        elif kind == "u4" and at + 4 <= len(b):
            b[at : at + 4] = struct.pack("<I", (0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, 1 << 20, 65, 0)[value % 6])
        elif kind == "u8" and at + 8 <= len(b):
            b[at : at + 8] = struct.pack("<Q", (2**64 - 1, 2**63, 2**32, 1 << 31)[value % 4])
        elif at < len(b):
            b[at] = value if kind == "set" else b[at] ^ (1 << (value % 8))
    return bytes(b)


edits = st.lists(st.tuples(st.integers(0, 4096), st.sampled_from(["flip", "set", "insert", "delete", "truncate", "u4", "u8"]),
                           st.integers(0, 255)), min_size=1, max_size=5)


@settings(max_examples=1500, **FUZZ_SETTINGS)
@given(requests, st.booleans(), edits)
def test_mutated_requests_give_a_response_or_an_error_code(lib, in_wire, request, text, edit):
    ops, inputs, fmt = request
    blob = (wire.encode_request_text if text else wire.encode_request)(ops, inputs, fmt)
    check_response(*raw(lib, mutate(blob, edit)))


@settings(max_examples=300, **FUZZ_SETTINGS)
@given(st.sampled_from(CASES), edits)
def test_mutated_golden_requests_in_process_and_subprocess(lib, exe, in_wire, case, edit):
    vector, form = case
    request = mutate(request_path(vector.name, form).read_bytes(), edit)
    code, message, data = raw(lib, request)
    check_response(code, message, data)
    proc = run_exe(exe, request)
    assert proc.returncode == (0 if code == 0 else 1), proc   # a crash shows as a signal
    assert proc.stdout == data


def test_many_mutations_through_the_binary(lib, exe, in_wire):
    """A batch of seeded mutations of every vector through the standalone binary,
    compared byte for byte with the in-process answers."""
    rng = random.Random(20261128)
    kinds = ["flip", "set", "insert", "delete", "truncate", "u4", "u8"]
    batch = []
    for _ in range(1200):
        vector, form = rng.choice(CASES)
        edit = [(rng.randrange(4096), rng.choice(kinds), rng.randrange(256)) for _ in range(rng.randint(1, 4))]
        batch.append(mutate(request_path(vector.name, form).read_bytes(), edit))
    with ThreadPoolExecutor(8) as pool:
        procs = list(pool.map(lambda r: run_exe(exe, r), batch))
    for request, proc in zip(batch, procs):
        code, message, data = raw(lib, request)
        assert proc.returncode == (0 if code == 0 else 1), (request, proc)
        assert proc.stdout == data, request
        check_response(code, message, data)


# ---- forged counts and lengths: an error at once, without allocating -----------

def v3_fields(blob: bytes) -> list[tuple[int, int]]:
    """(offset, width) of every count and length field of a valid v3 request."""
    fields, at = [(8, 4)], 12

    def skip(width: int) -> int:
        nonlocal at
        n = int.from_bytes(blob[at : at + width], "little")
        fields.append((at, width))
        at += width
        return n

    def skip_bytes(width: int) -> None:
        nonlocal at
        n = skip(width)
        at += n

    for _ in range(int.from_bytes(blob[8:12], "little")):
        skip_bytes(2)
        for _ in range(skip(2)):
            skip_bytes(2)
            skip_bytes(4)
    for _ in range(skip(4)):
        kind = blob[at]
        at += 2
        skip_bytes(4)
        if kind == 0:
            skip_bytes(8)
    assert at == len(blob)
    return fields


FORGED = {2: [0xFFFF, 0x8000, 65], 4: [0xFFFFFFFF, 0x80000000, 0x7FFFFFFF, (1 << 20) + 1, 1 << 16],
          8: [2**64 - 1, 2**63, 2**32, 2**31 + 7]}
CAP = 256 << 10


@pytest.mark.parametrize("vector", [v for v in VECTORS if v.v3 is GEN and v.code == 0], ids=lambda v: v.name)
def test_forged_counts_and_lengths_fail_fast_without_allocating(lib, in_wire, vector):
    blob = request_path(vector.name, "v3").read_bytes()
    assert raw(lib, blob, memory_limit=CAP)[0] == 0      # the honest request fits under the cap
    for offset, width in v3_fields(blob):
        for value in FORGED[width]:
            forged = bytearray(blob)
            forged[offset : offset + width] = value.to_bytes(width, "little")
            start = time.perf_counter()
            code, message, _ = raw(lib, bytes(forged), memory_limit=CAP)
            took = time.perf_counter() - start
            # never 6: nothing was allocated for it (2: a forged name length read other bytes as the name)
            assert code in (1, 2, 5), (offset, width, value, code, message)
            assert took < 0.5, (offset, value, took)


def test_forged_text_lengths_fail_fast_without_allocating(lib):
    for line in (b"input inline a 9999999999999999999", b"input inline a 4294967296", b"input inline a 18446744073709551615"):
        code, message, _ = raw(lib, b"slopfast-request 1\n" + line + b"\nx\nend\n", memory_limit=CAP)
        assert code == 1, message


def test_forged_counts_are_not_trusted_for_allocation(lib):
    """1M declared inputs with no bytes behind them: refused before the input array exists."""
    blob = wire.encode_request([("echo", {})], [])[:-4] + struct.pack("<I", 1 << 20)
    code, message, _ = raw(lib, blob, memory_limit=CAP)
    assert code == 1 and message.startswith(b"truncated request: inputs")


# ---- memory caps and allocation failures ---------------------------------------

LIMITS = [1, 64, 1024, 60 << 10, 64 << 10, 66 << 10, 70 << 10, 128 << 10, 200 << 10, 1 << 20]


@pytest.mark.parametrize("vector, form", CASES, ids=CASE_IDS)
def test_memory_caps_give_the_same_answer_or_out_of_memory(lib, in_wire, vector, form):
    request = request_path(vector.name, form).read_bytes()
    expected = raw(lib, request)
    for limit in LIMITS:
        got = raw(lib, request, memory_limit=limit)
        assert got == expected or got[:2] == (6, b"out of memory"), (limit, got[:2])


@pytest.fixture(scope="module")
def hooks_lib():
    """libchunks built with SLOPFAST_TEST_HOOKS, so fail_after can fail the n-th block."""
    return native_builds.library("-DSLOPFAST_TEST_HOOKS")


@pytest.mark.parametrize("vector, form", CASES, ids=CASE_IDS)
def test_every_allocation_failure_gives_out_of_memory(hooks_lib, in_wire, vector, form):
    request = request_path(vector.name, form).read_bytes()
    expected = raw(hooks_lib, request)
    for fail_after in range(1, 2000):
        got = raw(hooks_lib, request, fail_after=fail_after)
        if got == expected:
            break
        assert got[:2] == (6, b"out of memory"), (fail_after, got[:2])
    else:
        pytest.fail("more than 2000 arena blocks for a golden vector")


def test_run_blob_opts_binding(lib, in_wire):
    request = request_path("echo_file", "v3").read_bytes()
    assert native.run_blob_opts(request) == native.run_blob(request)
    assert native.run_blob_opts(request, memory_limit=1) == wire.Response(6, "out of memory", [])


# ---- threads ------------------------------------------------------------------

def test_concurrent_calls_match_serial_calls(lib, in_wire):
    big = [wire.Input(b"big%d" % i, os.urandom(1 << 20)) for i in range(4)]
    requests = [request_path(v.name, f).read_bytes() for v, f in CASES]
    requests += [wire.encode_request([("echo", {}), ("aggregate", {})], big + [wire.Input(b"files/lines.txt")])]
    requests += [wire.encode_request_text([("echo", {})], big[:2])]
    serial = [raw(lib, r) for r in requests]
    work = requests * 6
    random.Random(7).shuffle(work)
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda r: raw(lib, r), work))
    expected = {r: s for r, s in zip(requests, serial)}
    for request, got in zip(work, results):
        assert got == expected[request]


@pytest.mark.skipif(shutil.which("valgrind") is None or os.environ.get("SLOPFAST_VALGRIND") != "1",
                    reason="set SLOPFAST_VALGRIND=1 to run the golden vectors under valgrind")
def test_golden_vectors_under_valgrind(exe):
    for vector, form in CASES:
        with open(request_path(vector.name, form), "rb") as request:
            proc = subprocess.run(["valgrind", "-q", "--error-exitcode=99", "--leak-check=full", str(exe)],
                                  stdin=request, capture_output=True, cwd=WIRE)
        assert proc.returncode == (0 if vector.code == 0 else 1), (vector.name, form, proc.stderr.decode())


# ---- docs/wire-format.md: the spec's examples run as documented --------------

DOC = ROOT / "docs" / "wire-format.md"
# a fenced block tagged `KIND example:NAME:ROLE`, closed by a fence of the same length
_EXAMPLE = re.compile(r"^(`{3,})(text|hex) example:([\w-]+):(request|response)\n(.*?)^\1$", re.M | re.S)


def doc_examples() -> dict[str, dict[str, bytes]]:
    """{name: {"request": bytes, "response": bytes}} from the document's example blocks:
    `text` blocks are taken byte for byte (each ends with its last line's LF), `hex`
    blocks are hex bytes with `# comments`."""
    found: dict[str, dict[str, bytes]] = {}
    for _, kind, name, role, body in _EXAMPLE.findall(DOC.read_text(encoding="utf-8")):
        if kind == "text":
            data = body.encode("utf-8")
        else:
            data = bytes.fromhex("".join(line.split("#", 1)[0] for line in body.splitlines()))
        assert role not in found.setdefault(name, {}), f"two {role} blocks for example {name}"
        found[name][role] = data
    return found


DOC_EXAMPLES = doc_examples()


def test_doc_examples_are_complete():
    assert set(DOC_EXAMPLES) == {"v1-build", "v1-error", "v3-echo"}
    for name, blocks in DOC_EXAMPLES.items():
        assert set(blocks) == {"request", "response"}, name


@pytest.mark.parametrize("name", sorted(DOC_EXAMPLES))
def test_doc_examples_through_the_standalone_binary(exe, name):
    """The documented request, fed to slopfast-pipeline from the repository root,
    writes the documented response."""
    example = DOC_EXAMPLES[name]
    proc = run_exe(exe, example["request"], cwd=ROOT)
    assert proc.stdout == example["response"]
    code = wire.decode_response(example["response"]).code
    assert proc.returncode == (0 if code == 0 else 1)
    assert proc.stderr == b""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX shell redirect")
def test_doc_v1_example_as_the_doc_says_to_run_it(exe, tmp_path):
    """`slopfast/slopfast-pipeline < request.txt` from the repository root."""
    request = tmp_path / "request.txt"
    request.write_bytes(DOC_EXAMPLES["v1-build"]["request"])
    proc = subprocess.run(["/bin/sh", "-c", '"$0" < "$1"', str(exe), str(request)], capture_output=True, cwd=ROOT)
    assert (proc.returncode, proc.stdout) == (0, DOC_EXAMPLES["v1-build"]["response"])


@pytest.mark.parametrize("name", sorted(DOC_EXAMPLES))
def test_doc_examples_in_process(lib, monkeypatch, name):
    monkeypatch.chdir(ROOT)
    example = DOC_EXAMPLES[name]
    code, message, data = raw(lib, example["request"])
    assert data == example["response"]
    check_response(code, message, data)


def test_doc_examples_match_the_encoders_and_the_spec_parser():
    v3 = DOC_EXAMPLES["v3-echo"]["request"]
    ops = [("echo", {"k": "v"})]
    inputs = [wire.Input(b"a.txt", b"hi\n"), wire.Input(b"tests/data/wire/files/hello.txt", mode=wire.MODE_FULL)]
    assert v3 == wire.encode_request(ops, inputs)
    assert parse_v3(v3) == (wire.RESPONSE_BINARY, [("echo", {"k": b"v"})], inputs)
    assert wire.decode_response(DOC_EXAMPLES["v3-echo"]["response"]) == wire.Response(
        0, "", [b"hi\n", file_bytes(b"files/hello.txt")])
    # the v1 example: echo's parts are its inputs, then md_summary's outlines
    response = wire.decode_response(DOC_EXAMPLES["v1-build"]["response"])
    assert response.parts == [file_bytes(b"files/hello.txt"), V1_INPUTS[1].data, b"", b"- Plan\n  - Step one\n"]


V1_OPS = [("echo", {}), ("md_summary", {})]
V1_INPUTS = [wire.Input(b"tests/data/wire/files/hello.txt"),
             wire.Input(b"notes/plan v2.md", b"# Plan\n\nIntro.\n\n## Step one", wire.MODE_SUMMARY)]


def test_doc_v1_example_equals_the_encoded_model(lib, monkeypatch):
    """The hand-written v1 example and the encoders' forms of its model give the
    documented response (v1 text, and v3 through native.run)."""
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("SLOPFAST_TRANSPORT", raising=False)
    documented = DOC_EXAMPLES["v1-build"]
    assert raw(lib, wire.encode_request_text(V1_OPS, V1_INPUTS))[2] == documented["response"]
    assert native.run(V1_OPS, V1_INPUTS) == wire.decode_response(documented["response"]).parts


def test_doc_names_every_op_limit_and_code():
    """The op table, the limits and the codes of the document follow lib/."""
    doc = DOC.read_text(encoding="utf-8")
    for name, op_id in re.findall(r"OP_\((\w+),\s*(\d+)\)", (ROOT / "lib" / "op_table.h").read_text()):
        assert re.search(rf"^\| `{name}` \| {op_id} \|", doc, re.M), name
    for limit in re.findall(r"\b(LIMIT_\w+)\s*(?:=|\()", (ROOT / "lib" / "op.h").read_text()):
        assert re.search(rf"^\| `{limit}` \|", doc, re.M), limit
    for code, name in wire.CODE_NAMES.items():
        assert f"| {code} | `Code_" in doc and f"({name})" in doc, (code, name)


# ---- the binding's response reader ------------------------------------------

def _response_blob(parts: list[bytes], message: bytes = b"") -> bytes:
    head = b"SLPR\x03\0\0\0" + struct.pack("<iI", 0, len(message)) + message
    return head + struct.pack("<I", len(parts)) + b"".join(struct.pack("<Q", len(p)) + p for p in parts)


@pytest.mark.parametrize("parts", [[], [b""], [b"a", b"", b"xyz" * 100]])
def test_binding_reads_the_parts_of_a_response(parts):
    assert wire.decode_response(_response_blob(parts)).parts == parts


@pytest.mark.parametrize("cut", [0, 1, 7, 8, 9])
def test_binding_refuses_a_truncated_response(cut):
    blob = _response_blob([b"abcdefgh"])
    with pytest.raises(PipelineError, match="malformed response"):
        wire.decode_response(blob[: len(blob) - 16 + cut] if cut < 8 else blob[:-1])


@pytest.mark.parametrize("size", [1, native._SMALL_RESPONSE + 1])
def test_small_and_large_responses_take_their_paths_alike(size):
    request = wire.encode_request([("echo", {})], [wire.Input(b"a", b"x" * size), wire.Input(b"b", b"")])
    assert native.run_blob(request).parts == [b"x" * size, b""]


# ---- pipeline contexts: memory kept between calls ----------------------------

def _run_in(lib, context: int, request: bytes) -> tuple[int, bytes, bytes]:
    """(code, message, response bytes) of pipeline_run_in; the context owns them."""
    data, length, code, message, message_len = native._HEADER.unpack(ctypes.string_at(lib.run_in(context, request, len(request)), 40))
    return code, ctypes.string_at(message, message_len) if message_len else b"", ctypes.string_at(data, length) if length else b""


def test_one_context_answers_every_vector_as_pipeline_run(lib, in_wire):
    """All golden vectors through one context, in an order that grows and
    shrinks its memory (big inputs, errors, text responses, big again)."""
    big = wire.encode_request([("echo", {})], [wire.Input(b"a", os.urandom(3 << 20))])
    requests = [request_path(v.name, f).read_bytes() for v, f in CASES]
    order = [big] + requests + [big] + requests[::-1] + [big]
    context = lib.context_new()
    assert context
    try:
        for request in order:
            assert _run_in(lib, context, request) == raw(lib, request)
    finally:
        lib.context_free(context)


@pytest.mark.parametrize("cap", [0, 39, 40, 64, 1 << 16])
def test_a_context_buffer_answers_what_pipeline_run_answers(lib, in_wire, cap):
    """With a caller buffer (pipeline_context_buffer) the ABI fields land in
    its first 40 bytes and an answer that fits right after them; bigger
    answers stay in the context, and the bytes are the same either way."""
    buffer = ctypes.create_string_buffer(max(cap, 1))
    context = lib.context_new()
    lib.context_buffer(context, buffer if cap else None, cap)
    try:
        for v, f in CASES:
            request = request_path(v.name, f).read_bytes()
            addr = lib.run_in(context, request, len(request))
            fields = native._HEADER.unpack(ctypes.string_at(addr, 40))
            code, message, data = _run_in_fields(fields)
            assert (code, message, data) == raw(lib, request)
            if cap >= 40:
                assert native._HEADER.unpack_from(buffer) == fields
                inline = ctypes.addressof(buffer) + 40
                assert (fields[0] == inline) == (fields[1] <= cap - 40)
    finally:
        lib.context_free(context)


def _run_in_fields(fields) -> tuple[int, bytes, bytes]:
    data, length, code, message, message_len = fields
    return code, ctypes.string_at(message, message_len) if message_len else b"", ctypes.string_at(data, length) if length else b""


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads RSS from /proc")
def test_a_thread_keeps_at_most_its_workspace_after_a_large_call():
    """After a 300 MB answer has been read, the thread's context lets its
    memory go down to the 64 MiB it keeps between calls (README)."""
    script = (
        "import os, resource\n"
        "from slopfast import native, wire\n"
        "page = os.sysconf('SC_PAGE_SIZE')\n"
        "rss = lambda: int(open('/proc/self/statm').read().split()[1]) * page\n"
        "native.run_blob(wire.encode_request([('echo', {})], [wire.Input(b'a', b'x')]))\n"
        "before = rss()\n"
        "parts = native.run([('echo', {})], [wire.Input(b'a', b'y' * (300 << 20))])\n"
        "assert len(parts[0]) == 300 << 20\n"
        "del parts\n"
        "print(before, rss())\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=subprocess_env(), timeout=120)
    assert out.returncode == 0, out.stderr
    before, after = map(int, out.stdout.split())
    assert after - before <= (64 + 16) << 20, (before >> 20, after >> 20)


def test_a_context_past_the_retained_size_starts_afresh(lib):
    """Over ARENA_RETAIN_MAX (64 MiB) the context lets its memory go; the
    next calls are still right."""
    context = lib.context_new()
    try:
        huge = wire.encode_request([("echo", {})], [wire.Input(b"a", b"x" * (40 << 20))])
        small = wire.encode_request([("echo", {})], [wire.Input(b"a", b"y")])
        for request in (huge, small, huge, small):
            assert _run_in(lib, context, request) == raw(lib, request)
    finally:
        lib.context_free(context)


def test_null_context_and_null_free_are_refused_quietly(lib):
    code, message, _ = _run_in(lib, None, wire.encode_request([("echo", {})], []))
    assert (code, message) == (6, b"out of memory")
    lib.context_free(None)


def test_each_thread_has_its_own_context():
    request = wire.encode_request([("echo", {})], [wire.Input(b"a", b"b")])
    native.run_blob(request)
    contexts = {}

    alive = threading.Barrier(4)

    def work(i: int) -> None:
        payload = bytes([i]) * (100_000 * (i + 1))
        for _ in range(20):
            assert native.run_blob(wire.encode_request([("echo", {})], [wire.Input(b"a", payload)])).parts == [payload]
        contexts[i] = native._thread.context.address
        alive.wait()   # every thread's context exists at once: their addresses differ

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(contexts.values()) | {native._thread.context.address}) == 5


@settings(max_examples=300, deadline=None)
@given(op=st.text(max_size=20), path=st.binary(max_size=40), data=st.binary(max_size=200),
       params=st.sampled_from([{}, {"k": "v"}]), mode=st.sampled_from([0, 2]), fmt=st.sampled_from([0, 1]))
def test_one_op_one_input_requests_follow_the_layout(op, path, data, params, mode, fmt):
    """The cached-prefix shortcut of encode_request and its general loop agree
    with the spec's layout, field by field."""
    name = op.encode()
    body = b"".join(struct.pack("<H", len(k)) + k.encode() + struct.pack("<I", len(v)) + v.encode() for k, v in params.items())
    expected = (b"SLPF\x03" + bytes((fmt,)) + b"\0\0" + struct.pack("<IH", 1, len(name)) + name
                + struct.pack("<H", len(params)) + body + struct.pack("<I", 1)
                + struct.pack("<BBI", 0, mode, len(path)) + path + struct.pack("<Q", len(data)) + data)
    assert wire.encode_request([(op, params)], [wire.Input(path, data, mode)], fmt) == expected


@settings(max_examples=200, deadline=None)
@given(ops=st.lists(st.tuples(st.text(min_size=1, max_size=8),
                              st.dictionaries(st.text(max_size=6), st.one_of(st.text(max_size=9), st.binary(max_size=9)),
                                              max_size=3)), max_size=3))
def test_request_base_bytes_is_the_encoded_size(ops):
    assert wire.request_base_bytes(ops) == len(wire.encode_request(ops, []))
